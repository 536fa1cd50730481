"""How recipe stages run (tools/recipe_lib.sh, each recipe's cmd.sh): one process, torchrun on one or several
nodes, or Slurm batch jobs. Slurm is faked: executables first on PATH record their arguments (and, for sbatch,
the submitted script, which they then run the way Slurm runs a job)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fake_corpora import make_fake_aishell2

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("demo", "aishell2", "librispeech")
LIB = REPO / "tools" / "recipe_lib.sh"

FAKE_SBATCH = r"""#!/usr/bin/env bash
# Records its arguments and the script, then runs the script as the job: in --chdir, output to --output,
# SLURM_* set for a 2-node allocation; exits with the job's status, as sbatch --wait does.
set -uo pipefail
record="${FAKE_SLURM}/sbatch.$(date +%s%N).$$"
printf '%s\n' "$@" > "${record}.args"
script=${!#}
cp "${script}" "${record}.sh"
out= dir=.
for a in "$@"; do
  case "$a" in --output=*) out=${a#--output=} ;; --chdir=*) dir=${a#--chdir=} ;; esac
done
echo "Submitted batch job 4242"
cd "${dir}" && SLURM_JOB_ID=4242 SLURM_JOB_NODELIST='gpu[07-08]' SLURM_CPUS_PER_TASK=16 bash "${script}" > "${out}" 2>&1
"""
# Options come first, written --name=value (the launcher writes them so); the command follows. Runs the
# command once per node of --nodes=N (the launcher asks for one task per node), all at once.
FAKE_SRUN = r"""#!/usr/bin/env bash
record="${FAKE_SLURM}/srun.$(date +%s%N).$$"
printf '%s\n' "$@" > "${record}.args"
printf 'SRUN_CPUS_PER_TASK=%s\n' "${SRUN_CPUS_PER_TASK:-}" > "${record}.env"
nodes=1
while [ $# -gt 0 ] && [[ "$1" == -* ]]; do
  case "$1" in --nodes=*) nodes=${1#--nodes=} ;; esac
  shift
done
pids=()
for ((i = 0; i < nodes; i++)); do
  SLURM_NODEID=$i "$@" &  # not exec: the torchrun function below must apply
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "${pid}" || status=1; done
exit "${status}"
"""
FAKE_SCONTROL = r"""#!/usr/bin/env bash
[ "$1 $2 $3" = "show hostnames gpu[07-08]" ] || { echo "fake scontrol: unexpected: $*" >&2; exit 1; }
printf '%s\n' ${FAKE_NODES:-gpu07 gpu08}
"""
# Records its arguments; with FAKE_TORCHRUN_EXEC=1 runs the module as one process, so a stage really trains.
FAKE_TORCHRUN = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "${FAKE_SLURM}/torchrun.$(date +%s%N).$$.args"
echo "fake torchrun on node ${SLURM_NODEID:-?}"
if [ "${FAKE_TORCHRUN_EXEC:-0}" = 1 ]; then
  while [ "$1" != -m ]; do shift; done
  exec python "$@"
fi
"""


def fake_cluster(tmp: Path, failing_job: bool = False, fake_torchrun: bool = True) -> dict:
    bin_dir, calls = tmp / "fakebin", tmp / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    sbatch = FAKE_SBATCH + ("exit 3\n" if failing_job else "")
    for name, text in (("sbatch", sbatch), ("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "FAKE_SLURM": str(calls)}
    if fake_torchrun:
        # torchrun is also in the venv, whose bin/ path.sh puts first on PATH; a bash function of that name,
        # exported, comes before PATH in every bash started below.
        fake = tmp / "fake_torchrun"
        fake.write_text(FAKE_TORCHRUN)
        fake.chmod(0o755)
        env["BASH_FUNC_torchrun%%"] = f'() {{ "{fake}" "$@"; }}'
    return env


def records(env: dict, tool: str) -> list[Path]:
    """The argument files of each call of a fake tool, in the order of the calls."""
    return sorted(Path(env["FAKE_SLURM"]).glob(f"{tool}.*.args"), key=lambda p: int(p.name.split(".")[1]))


def calls(env: dict, tool: str) -> list[list[str]]:
    return [p.read_text().splitlines() for p in records(env, tool)]


def run_recipe(recipe: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run.sh", *args], cwd=REPO / "examples" / recipe / "s0", capture_output=True,
                          text=True, timeout=600, env=env)


def cmd_sh(recipe: str) -> dict[str, str]:
    """The settings of a recipe's cmd.sh, as bash reads them."""
    names = ("slurm_train_opts", "slurm_gres", "slurm_short", "slurm_short_opts")
    script = ". ./cmd.sh; " + "; ".join(f'printf "%s\\n" "${{{n}}}"' for n in names)
    out = subprocess.run(["bash", "-c", script], cwd=REPO / "examples" / recipe / "s0", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return dict(zip(names, out))


# -- the process layout ------------------------------------------------------------------------------


def layout(settings: str, *module_args: str) -> subprocess.CompletedProcess:
    script = (f'set -euo pipefail\n{settings}\n. "{LIB}"\ncheck_launch_options\n'
              f'torchrun_command cmd {shlex.join(module_args)}\nprintf "%s\\n" "${{cmd[@]}}"')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True)


@pytest.mark.parametrize("settings, expected", [
    ("", ["python", "-m", "wenet_llm.bin.train_aed", "--config", "a b.yaml"]),
    ("ngpu=4", ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=4", "-m", "wenet_llm.bin.train_aed",
                "--config", "a b.yaml"]),
    ("ngpu=8 num_nodes=2 node_rank=1 master_addr=node0.cluster master_port=29611",
     ["torchrun", "--nnodes=2", "--node_rank=1", "--nproc_per_node=8", "--master_addr=node0.cluster",
      "--master_port=29611", "-m", "wenet_llm.bin.train_aed", "--config", "a b.yaml"]),
    ("ngpu=1 num_nodes=3 node_rank=0 master_addr=10.0.0.1",
     ["torchrun", "--nnodes=3", "--node_rank=0", "--nproc_per_node=1", "--master_addr=10.0.0.1",
      "--master_port=29500", "-m", "wenet_llm.bin.train_aed", "--config", "a b.yaml"]),
])
def test_torchrun_command(settings, expected):
    proc = layout(settings, "wenet_llm.bin.train_aed", "--config", "a b.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


@pytest.mark.parametrize("settings, message", [
    ("num_nodes=2", "--num_nodes 2 with --launcher local needs --master_addr"),
    ("num_nodes=2 node_rank=2 master_addr=h", "--node_rank must be 0 .. 1 (--num_nodes 2), got '2'"),
    ("ngpu=0", "--ngpu must be a whole number >= 1, got '0'"),
    ("num_nodes=two", "--num_nodes must be a whole number >= 1, got 'two'"),
    ("master_port=70000", "--master_port must be a TCP port, 1 .. 65535, got '70000'"),
    ("launcher=pbs", "--launcher must be local or slurm, got 'pbs'"),
    ("launcher=slurm master_addr=h", "--node_rank and --master_addr are for --launcher local"),
    ("launcher=slurm PATH=/usr/bin:/bin", "--launcher slurm needs sbatch, which is not on PATH"),
])
def test_bad_layouts_are_refused(settings, message):
    proc = layout(settings, "m")
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_run_training_needs_a_python_module_call():
    script = f'. "{LIB}"; run_training /tmp/x.log torchrun -m x'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1 and "expected LOG_FILE python -m MODULE ARG..., got: torchrun -m x" in proc.stderr


def test_training_stages_run_through_the_launcher():
    """Every training entry point of every recipe is started by run_training (so --ngpu, --num_nodes and
    --launcher reach it), never by run_logged or a plain python call."""
    for recipe in RECIPES:
        text = (REPO / "examples" / recipe / "s0" / "run.sh").read_text()
        calls_ = [line.strip() for line in text.splitlines() if re.search(r"wenet_llm\.bin\.train_(aed|llm)\b", line)]
        assert calls_, recipe
        assert all(c.startswith("run_training ") and " python -m wenet_llm.bin.train_" in c for c in calls_), calls_


# -- recipes, stage by stage, with fake inputs ---------------------------------------------------------

STAGES = {2: ("aed", "train_aed"), 4: ("llm_sft1", "train_llm"), 5: ("llm_sft2", "train_llm")}


def run_training_stages(recipe: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Stage 2, then stages 4-5 (stage 3 between them is not a training stage)."""
    proc = run_recipe(recipe, env, *args, "--stage", "2", "--stop_stage", "2")
    return proc if proc.returncode else run_recipe(recipe, env, *args, "--stage", "4", "--stop_stage", "5")


def fake_stage_inputs(tmp: Path, recipe: str) -> list[str]:
    """The files stages 2, 4 and 5 read for their signatures; the fake torchrun never reads them."""
    data, exp, llm = tmp / "data", tmp / "exp", tmp / "llm"
    for path in (data / "train" / "data.list", data / "lang" / "units.txt", exp / "aed" / "encoder" / "encoder.pt",
                 exp / "llm_sft1" / "final" / "adapter.safetensors", llm / "config.json",
                 exp / "demo_llm" / "model" / "config.json"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    args = ["--data", str(data), "--exp", str(exp)]
    return args if recipe == "demo" else [*args, "--llm_path", str(llm)]


@pytest.mark.parametrize("recipe", RECIPES)
def test_local_multi_node_training_stages(recipe, tmp_path):
    env = fake_cluster(tmp_path)
    opts = fake_stage_inputs(tmp_path, recipe)
    proc = run_training_stages(recipe, env, *opts, "--ngpu", "4", "--num_nodes", "2", "--node_rank", "1",
                               "--master_addr", "node0", "--master_port", "29700")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = calls(env, "torchrun")
    assert len(runs) == 3 and calls(env, "sbatch") == [] and calls(env, "srun") == []
    for args, (stage_dir, module) in zip(runs, STAGES.values()):
        i = args.index("-m")
        assert args[:i] == ["--nnodes=2", "--node_rank=1", "--nproc_per_node=4", "--master_addr=node0",
                            "--master_port=29700"]
        assert args[i + 1] == f"wenet_llm.bin.{module}"
        assert args[args.index("--exp-dir") + 1] == str(tmp_path / "exp" / stage_dir)
        # Node 1 logs beside node 0's log name, not over it (one shared file system).
        assert "fake torchrun on node ?" in (tmp_path / "exp" / stage_dir / "log" / "train.node1.log").read_text()
        assert not (tmp_path / "exp" / stage_dir / "log" / "train.log").exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_slurm_training_stages_are_batch_jobs(recipe, tmp_path):
    env = fake_cluster(tmp_path)
    opts = fake_stage_inputs(tmp_path, recipe)
    proc = run_training_stages(recipe, env, *opts, "--launcher", "slurm", "--ngpu", "8", "--num_nodes", "2",
                               "--slurm_opts", "--partition=a100 --account=asr")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = cmd_sh(recipe)
    jobs, steps, runs = records(env, "sbatch"), calls(env, "srun"), calls(env, "torchrun")
    assert len(jobs) == len(steps) == 3 and len(runs) == 6  # one torchrun on each of the 2 nodes
    assert runs[0::2] == runs[1::2]
    recipe_dir = REPO / "examples" / recipe / "s0"
    for n, (job, step, run, (stage_dir, module)) in enumerate(zip(jobs, steps, runs[0::2], STAGES.values())):
        args = job.read_text().splitlines()
        log = tmp_path / "exp" / stage_dir / "log" / "train.log"
        script = log.with_suffix(".sbatch")
        assert args == ["--wait", f"--job-name=wenet_llm_{stage_dir}", "--nodes=2", "--ntasks-per-node=1",
                        "--gpus-per-node=8", f"--output={log}", f"--chdir={recipe_dir}",
                        *site["slurm_train_opts"].split(), "--partition=a100", "--account=asr", str(script)]
        assert job.with_suffix(".sh").read_text() == script.read_text()  # what was submitted
        # In the job: one torchrun per node, meeting at the allocation's first node.
        assert step[:2] == ["--nodes=2", "--ntasks-per-node=1"] and step[2] == "torchrun"
        assert records(env, "srun")[n].with_suffix(".env").read_text() == "SRUN_CPUS_PER_TASK=16\n"
        i = run.index("-m")
        assert run[:i] == ["--nnodes=2", "--nproc_per_node=8", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu07:29500",
                           "--rdzv_id=4242"]
        assert run[i + 1] == f"wenet_llm.bin.{module}"
        assert run[run.index("--exp-dir") + 1] == str(tmp_path / "exp" / stage_dir)
        text = log.read_text()  # the job's output, in the stage's log dir
        assert "Slurm job 4242 on gpu[07-08]; rendezvous host gpu07" in text
        assert "fake torchrun on node 0" in text and "fake torchrun on node 1" in text
        assert (tmp_path / "exp" / stage_dir / f".stage{list(STAGES)[n]}.done").is_file()
    assert f"waiting for the job (log: {tmp_path / 'exp' / 'llm_sft2' / 'log' / 'train.log'})" in proc.stdout


def test_slurm_gres_and_a_failed_job(tmp_path):
    env = fake_cluster(tmp_path, failing_job=True)
    opts = fake_stage_inputs(tmp_path, "demo")
    recipe_dir = tmp_path / "recipe"  # a copy, so that its cmd.sh can be edited
    subprocess.run(["cp", "-r", str(REPO / "examples" / "demo" / "s0"), str(recipe_dir)], check=True)
    (recipe_dir / "cmd.sh").write_text((recipe_dir / "cmd.sh").read_text().replace("slurm_gres=false",
                                                                                    "slurm_gres=true"))
    proc = subprocess.run(["bash", "run.sh", *opts, "--stage", "2", "--stop_stage", "2", "--launcher", "slurm",
                           "--ngpu", "2"],
                          cwd=recipe_dir, capture_output=True, text=True, timeout=300,
                          env={**env, "WENET_LLM_ROOT": str(REPO)})
    assert proc.returncode == 1
    [args] = calls(env, "sbatch")
    assert "--gres=gpu:2" in args and not [a for a in args if a.startswith("--gpus-per-node")]
    log = tmp_path / "exp" / "aed" / "log" / "train.log"
    assert f"the Slurm job of {log.with_suffix('.sbatch')} failed; its log, {log}, ends with:" in proc.stderr
    assert "fake torchrun on node 0" in proc.stderr  # the end of the job's log
    assert not (tmp_path / "exp" / "aed" / ".stage2.done").exists()


# -- a real run through the fake cluster -----------------------------------------------------------------

TINY_AED = """
model:
  vocab_size: 0
  encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 1, cnn_module_kernel: 5}
  decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
data:
  sampler: {num_buckets: 2, max_duration: 30}
  speed_perturb: {enabled: false}
  num_workers: 0
train:
  max_epoch: 1
  accum_grad: 1
  progress_bar: false
  tensorboard: false
  scheduler: {warmup_steps: 5}
"""


def test_aishell2_stages_0_2_on_a_fake_cluster(tmp_path):
    """Short stages as srun jobs that really run; the AED training as a 1-node batch job whose torchrun
    really trains (as one process)."""
    env = {**fake_cluster(tmp_path), "FAKE_TORCHRUN_EXEC": "1"}
    corpus = make_fake_aishell2(tmp_path / "corpus")
    (tmp_path / "aed.yaml").write_text(TINY_AED)
    data, exp = tmp_path / "data", tmp_path / "exp"
    proc = run_recipe("aishell2", env, "--corpus_dir", str(corpus.root), "--data", str(data), "--exp", str(exp),
                      "--nj", "2", "--stop_stage", "2", "--aed_config", str(tmp_path / "aed.yaml"),
                      "--launcher", "slurm", "--ngpu", "2", "--slurm_opts", "--partition=cpu")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = cmd_sh("aishell2")
    short = ["--nodes=1", "--ntasks=1", *site["slurm_short_opts"].split(), "--partition=cpu"]
    steps = calls(env, "srun")
    assert len(steps) == 4  # stage 0, stage 1 (two commands), and the job's step
    for step, module in zip(steps, ("prepare_corpus", "make_tokenizer", "compute_cmvn")):
        assert step[:len(short)] == short and step[len(short):len(short) + 3] == ["python", "-m", f"wenet_llm.bin.{module}"]
    [job] = calls(env, "sbatch")
    assert "--nodes=1" in job and "--gpus-per-node=2" in job and f"--output={exp}/aed/log/train.log" in job
    assert steps[3][:3] == ["--nodes=1", "--ntasks-per-node=1", "torchrun"]
    assert "fake torchrun on node 0" in (exp / "aed" / "log" / "train.log").read_text()
    [run] = calls(env, "torchrun")
    assert run[:3] == ["--standalone", "--nnodes=1", "--nproc_per_node=2"]
    # The stages' real outputs and logs.
    assert (data / "train" / "data.list").is_file() and (data / "lang" / "units.txt").is_file()
    assert (exp / "aed" / "final.pt").exists() and (exp / "aed" / ".stage2.done").is_file()
    assert "epoch 0" in (exp / "aed" / "log" / "train.log").read_text()
    assert (exp / "data_prep" / "log" / "prepare_aishell2.log").stat().st_size > 0


# -- the rendezvous, for real ----------------------------------------------------------------------------

PROBE = """# Joins the process group torchrun describes and writes what each process sees.
import os, sys
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(total)
with open(os.path.join(sys.argv[1], f"rank{dist.get_rank()}"), "w") as f:
    f.write(f"{dist.get_world_size()} {total.item():g} {os.environ['GROUP_RANK']}")
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_two_nodes_meet_for_real(launcher, tmp_path):
    """The torchrun lines of both launchers make one working process group across 2 "nodes" (both on this
    machine) x 2 processes: 4 ranks that all-reduce over gloo, two to a node."""
    (tmp_path / "ddp_probe.py").write_text(PROBE)
    out = tmp_path / "out"
    out.mkdir()
    env = {**fake_cluster(tmp_path, fake_torchrun=False), "FAKE_NODES": "localhost localhost",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    log = tmp_path / "exp" / "probe" / "log" / "train.log"
    layout_ = f"ngpu=2 num_nodes=2 master_port={free_port()} launcher={launcher}"
    train = f'run_training "{log}" python -m ddp_probe "{out}"'
    if launcher == "local":  # run.sh on each node, each with its rank
        procs = [subprocess.Popen(["bash", "-c", f'set -euo pipefail; . "{LIB}"; {layout_} node_rank={rank} '
                                   f'master_addr=127.0.0.1; check_launch_options; {train}'],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for rank in (0, 1)]
    else:  # one run.sh submits the job; the job script sources the recipe's path.sh, so it runs in a recipe dir
        procs = [subprocess.Popen(["bash", "-c", f'set -euo pipefail; . "{LIB}"; {layout_}; check_launch_options; '
                                   f'{train}'], cwd=REPO / "examples" / "demo" / "s0",
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs) + "".join(
        f.read_text() for f in log.parent.glob("*.log"))
    seen = {f.name: f.read_text().split() for f in out.iterdir()}
    assert sorted(seen) == ["rank0", "rank1", "rank2", "rank3"]
    assert {world for world, _, _ in seen.values()} == {"4"}
    assert {total for _, total, _ in seen.values()} == {"10"}  # 1 + 2 + 3 + 4: every rank took part
    nodes = [seen[f"rank{r}"][2] for r in range(4)]
    assert nodes[0] == nodes[1] != nodes[2] == nodes[3]  # ranks 0-1 on one node, 2-3 on the other
    if launcher == "local":
        assert nodes == ["0", "0", "1", "1"]  # static rendezvous: --node_rank decides
        assert log.is_file() and log.with_name("train.node1.log").is_file()
    else:
        assert "rendezvous host localhost" in log.read_text()
