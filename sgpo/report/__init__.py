"""Reports over multiruns: ``python -m sgpo.report <multirun folder>`` (see __main__.py)."""
