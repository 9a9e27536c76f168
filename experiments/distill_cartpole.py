"""Corrector distillation on the CPU cartpole agent (launch/distill.py)."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.episodes = 16           # teacher rollouts (500 steps each)
  c.teacher_prob = 0.5      # executed action during speculation: teacher with this probability
  c.history = 4             # K mismatch tokens
  c.kinds = ('mlp', 'transformer')
  c.hidden = 256
  c.steps = 4000            # optimiser steps per corrector
  c.batch_size = 256
  c.lr = 3e-4
  c.lam = 0.1               # residual regulariser weight
  c.holdout = 0.1           # fraction of teacher EPISODES held out
  c.task_id = -1            # multitask exports: the task's index (-1: the export's)
  c.planner = ml_collections.ConfigDict()  # planner overrides, e.g. horizon=6
  c.storage_dtype = 'float32'
  c.dataset = ''            # reuse an earlier run's teacher rollouts (its workdir/dataset.npz)
  c.keep_best = False       # True: keep the epoch with the lowest held-out error
  c.pipelined = False       # True: data for the pipelined executor (E = 1, lead 1; k = 0 only)
  return c
