"""Model definitions that procdsl registers with TorchTitan (see ``procdsl.runtime.spec``)."""
