"""The REST control plane: thin routes over app.services. Auth lives in deps.py."""
