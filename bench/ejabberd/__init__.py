"""ejabberd from Debian as the IM-server baseline: `install.sh`, the config template and
`server.py`, which starts and stops an instance of its own for a scenario."""
