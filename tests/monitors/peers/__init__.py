"""Real telemetry peers for the monitor tests: Panko 10 API and Ceilometer 27's notification agent."""
