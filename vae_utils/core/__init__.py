"""The training core: what a run is and how it trains.

``config`` (``TrainConfig``, validated and frozen), ``data`` (the dataset registry and loading),
``model`` (encoder, decoder, ``Sampling``), ``objective`` (the negative ELBO that training
minimises), ``optimizers`` (the optimizer registry both engines read) and ``schedules`` (learning
rate and KL weight over updates), ``training`` (``train``, ``train_seeds``), ``fastpath`` (the
MLP's compiled epoch), ``evaluation`` (held-out ELBO, IWAE NLL, active units), ``noise`` (the
gradient-noise scale). Nothing here imports the rest of the toolkit.
"""
