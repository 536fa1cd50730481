"""Entry points: parse arguments, load the config, build objects, call one function."""
