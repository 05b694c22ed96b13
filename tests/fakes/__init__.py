"""Small, real HTTP stand-ins for what tests cannot reach: an OpenAI-compatible model and a CRM.

Both run a stdlib ThreadingHTTPServer on a free loopback port in a background thread, or as
a subprocess via `python -m tests.fakes.llm` / `python -m tests.fakes.crm`.
"""
