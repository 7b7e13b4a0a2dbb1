"""The claims and their statistics: the claim tables (``records``, ``tables/*.yaml``), estimates and tests (``stats``), outcomes under Holm and the
records a page renders (``verdicts``), the experimental protocol (``protocol``: tune on some seeds,
judge on others; breaking rates; the critical-batch curve) and the analyses behind them
(``analysis``). Pure NumPy/SciPy/pandas: no TensorFlow.
"""
