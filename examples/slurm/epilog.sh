#!/bin/sh
# Slurm epilog (Epilog= in slurm.conf, runs as root on the node after a job): the VRAM swap takes
# its memory back, as far as the card has room (it waits while the pages move back).
[ -n "$SLURM_JOB_GPUS$CUDA_VISIBLE_DEVICES" ] || exit 0
/usr/sbin/vramfs-swap reclaim >/dev/null 2>&1 || logger -t vramfs-swap "epilog of job $SLURM_JOB_ID: reclaim failed"
exit 0
