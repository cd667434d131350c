// The VS Code side of procdsl: the grammar colours .curr files; this starts `procdsl lsp` over
// stdio for everything else (diagnostics, hover, completion, definitions, formatting, fixes).
const { workspace, window } = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = workspace.getConfiguration("procdsl").get("server.command");
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient("procdsl", "procdsl language server", server, {
    documentSelector: [{ scheme: "file", language: "curr" }],
  });
  client.start().catch((error) =>
    window.showErrorMessage(`procdsl lsp did not start (${error.message}); install it with: pip install 'procdsl[lsp]'`));
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
