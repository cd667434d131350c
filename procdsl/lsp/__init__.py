"""``procdsl lsp``: the language server of .curr files, over stdio (pygls + lsprotocol).

One module per feature, each a pure function of an :class:`~procdsl.lsp.analysis.Analysis`
(the compiled document) and a cursor: :mod:`.diagnostics`, :mod:`.hover`, :mod:`.completion`,
:mod:`.definition`, :mod:`.formatting`, :mod:`.actions`, :mod:`.inlay`. :mod:`.server` wires them
to the protocol. Nothing here imports torch.
"""
