"""Layer 2, ``nets``: the networks, the training engine and run directories.

``config`` (model and training sections), ``models`` (Flax NNX nets, ``make_logit_fn``),
``train`` (``make_trainer(cfg)``: pure functions, ensembles as one sharded program), ``runs``
(the on-disk run format and the training driver).
"""
