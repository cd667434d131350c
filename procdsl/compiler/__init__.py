"""The compiler: .curr files → validated, hashed plans, or diagnostics.

Stages, one module each, data flowing one way:
``load`` (files, imports) → ``scope`` (definitions, lets) → ``elaborate`` (settings, sources,
phases, with ``values`` reading typed values) → ``checks`` (structural passes) → Plan.
``overrides`` and ``sweep`` rewrite the AST before elaboration, so derived fields are always
recomputed by the same code.
"""

from procdsl.compiler.compile import CompileResult, compile_file, compile_plan, compile_text

__all__ = ["CompileResult", "compile_file", "compile_plan", "compile_text"]
