-- Databases for the MLflow backend store, MLflow's users (its basic-auth app) and the
-- Prefect server.
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
