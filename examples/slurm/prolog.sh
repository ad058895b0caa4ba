#!/bin/sh
# Slurm prolog (Prolog= in slurm.conf, runs as root on the node before a job): a job that was
# given a GPU gets the VRAM a vramfs swap with a spill holds on this node. A failure only logs:
# the job still runs, with less free VRAM.
[ -n "$SLURM_JOB_GPUS$CUDA_VISIBLE_DEVICES" ] || exit 0
if ! /usr/sbin/vramfs-swap yield all >/dev/null 2>&1; then
  logger -t vramfs-swap "prolog of job $SLURM_JOB_ID: yield failed"
fi
exit 0
