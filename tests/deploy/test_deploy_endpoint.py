"""The UpdateEndpoint deployment configuration, as SageMaker wants it."""

from __future__ import annotations

from deploy import endpoint


def test_blue_green_deployment_config_shapes() -> None:
    linear = endpoint.BlueGreen(routing="linear", step_percent=25, wait_interval=60).to_api()
    routing = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 60,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert "AutoRollbackConfiguration" not in linear
    at_once = endpoint.BlueGreen().to_api()["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert at_once == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
