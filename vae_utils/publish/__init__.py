"""Publishing results into the book: numbered, cited figures with provenance (``figures``),
tables for people (``tables``) and the words with units that name every column (``labels``).
"""
