"""The SDK with the four-eyes rules of issue 16: a leader created by one dept_admin waits for a
second manager, whose approval carries the enrollment code the new official enrolls with."""

from __future__ import annotations

from sealhub_sdk import Client, DeviceKey

from tests.conftest import Gateway
from tests.sdk.test_gateway_sdk import client_for, enrolled_client


def test_a_leader_created_through_the_sdk_takes_a_second_manager(gateway: Gateway) -> None:
    dept_admin = enrolled_client(gateway, "yl-jyj", ["dept_admin"])
    admin = enrolled_client(gateway, "yl", ["admin"])
    try:
        clerk = dept_admin.create_official("王科员", "yl-jyj", ["clerk"])
        assert clerk.id and clerk.enrollment_code and clerk.pending_request is None
        asked = dept_admin.create_official("李局长", "yl-jyj", ["leader"])
        assert asked.pending_request and not asked.enrollment_code
        created = admin.approve_official_request(asked.pending_request)
        assert created["roles"] == ["leader"]
        leader: Client = client_for(gateway, DeviceKey.generate(), created["id"])
        leader.enroll(created["id"], created["enrollment_code"])
        leader.login()
        assert leader.me().roles == ("leader",)
        leader.close()
    finally:
        dept_admin.close()
        admin.close()
