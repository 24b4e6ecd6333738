"""Import, train, compile, verify and package XGBoost models for the RTB inference server."""
