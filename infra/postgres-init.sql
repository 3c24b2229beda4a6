-- Databases for the MLflow backend store and the Prefect server.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
