"""Layer 2, ``nets``: the networks, the training engine and run directories.

``config`` (model and training sections), ``models`` (Flax NNX nets, ``make_logit_fn``),
``train`` (``make_trainer(cfg)``: pure functions, ensembles as one sharded program, learning-rate
schedules), ``defences`` (on-sphere PGD, the quad net's exact worst case, the input-gradient
penalty, feature squeezing and its detector), ``relu_stability`` (interval bounds, the RS loss,
L1, the stable-ReLU fraction), ``rundir`` (the on-disk run format and its reader, ``load_run``) and
``runs`` (the training driver, ``run_training``, and its plans).
"""
