import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_logs_in_and_sees_dashboard(admin_user, console_login):
    page = console_login(admin_user)
    assert page.get_by_test_id("dashboard").is_visible()
