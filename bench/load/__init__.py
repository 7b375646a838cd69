"""The load-test bench behind ``python -m bench``: real Envoy, real load, side by side.

Modules: ``scenarios`` (what is sent and answered), ``upstream`` (the provider),
``configs`` (the configurations compared), ``stack`` (starting them), ``procstat``
(/proc sampling), ``loadgen`` (wrk, or the uvloop client in ``client``), ``collector``
(OTLP span counting), ``memscale`` (10k open streams), ``report`` (tables, targets,
plots) and ``runner`` (the alternating turns).
"""
