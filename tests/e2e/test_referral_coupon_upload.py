"""In a real browser: a marketer opens a referral program, follows "Upload coupon codes",
pastes a bad list (told which line, nothing stored, nothing echoed back), then uploads a
file, and the program shows the pool's counts. Screenshot: docs/screenshots/referral-coupons.png."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from growth.models import CouponCode, CouponSource, ReferralProgram, RewardKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_a_marketer_uploads_a_coupon_pool(live_server, console_login, marketer, tmp_path):
    program = ReferralProgram.objects.create(
        name="Invite a friend",
        referrer_reward_kind=RewardKind.FIXED,
        referrer_reward_value=Decimal("15"),
        friend_reward_kind=RewardKind.PERCENT,
        friend_reward_value=Decimal("10"),
        friend_coupon=CouponSource.POOL,
    )
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/growth/referralprogram/{program.pk}/change/")
    page.get_by_role("link", name="Upload coupon codes").click()
    page.select_option("#id_role", "friend")
    page.fill("#id_codes", "GOOD-CODE-001\nbad code here")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text("line 2: only letters, digits")).to_be_visible()
    expect(page.locator("#id_codes")).to_have_value("")
    assert "GOOD-CODE-001" not in page.content()
    assert not CouponCode.objects.exists()

    codes = tmp_path / "codes.csv"
    codes.write_text("POOL-CODE-0001\nPOOL-CODE-0002\n\nPOOL-CODE-0002\nPOOL-CODE-0003\n")
    page.select_option("#id_role", "friend")
    page.set_input_files("input[type=file]", str(codes))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text("3 codes added to the pool; 1 skipped as duplicates.")).to_be_visible()
    expect(page.get_by_text("Friend: 3 available, 0 issued, 0 revoked")).to_be_visible()
    assert "POOL-CODE-0001" not in page.content()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "referral-coupons.png"), full_page=True)
