"""The demo: a local seeded `mlflow server`. Only seed.py and chat_app.py import mlflow, and they
run in their own process (the app itself never imports mlflow)."""
