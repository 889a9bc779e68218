"""Qt-free core: model, MLflow REST client, filters, workspaces, outbox and cache."""
