"""One module per `ssl-ws` sub-command: configure(parser) and run(args)."""
