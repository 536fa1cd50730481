# shellcheck shell=bash disable=SC2034 # the settings are read by the launch functions of tools/recipe_lib.sh
# How this recipe runs on a Slurm cluster (Kaldi's cmd.sh): this site's settings, used with
# `bash run.sh --launcher slurm`; edit them once for your cluster (--slurm_opts adds options to one run).
# With --launcher local (the default) nothing here is used. See docs/clusters.md.
#
# Training stages (2 AED, 4-6 LLM SFT) are sbatch jobs of --num_nodes nodes with --ngpu GPUs each, one
# torchrun per node; run.sh waits for each job. The demo's models are small: one GPU is plenty.
slurm_train_opts="--time=04:00:00 --cpus-per-task=8 --mem=32G"
# false: GPUs are asked for with --gpus-per-node=N; true: with --gres=gpu:N (Slurm without --gpus-per-node)
slurm_gres=false
# The other stages (corpus generation, preparation, tokenizer, CMVN, decoding, scoring). srun: each command
# runs as a one-node job with these options; local: on this machine.
slurm_short=srun
slurm_short_opts="--time=04:00:00 --cpus-per-task=8 --mem=16G"
