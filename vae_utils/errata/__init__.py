"""The source article's program, corrected (``article``), and a loss-reduction pitfall trained on
purpose (``pitfalls``): what the errata chapter runs.
"""
