"""Resources: one package per outside system, each an interface with a demo and a live implementation."""
