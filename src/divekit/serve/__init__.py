"""Serve a trained run over HTTP (FastAPI + uvicorn; the ``divekit[serve]`` extra): ``divekit serve RUN``."""
