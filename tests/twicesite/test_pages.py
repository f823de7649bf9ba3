import pytest
from django.contrib.auth import get_user_model


@pytest.mark.django_db
def test_home_page_explains_the_site(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Who is that?" in response.content
    assert b"twicesite/base.css" in response.content


@pytest.mark.browser
def test_home_page_renders_and_admin_login_works(page, django_user_model, shots):
    django_user_model.objects.create_superuser("curator", "c@example.org", "s3cret-pass!")
    page.goto("/")
    assert page.locator("h1").inner_text() == "Who is that?"
    # The stylesheet is served by the site itself and applied.
    assert page.locator(".site-header").evaluate("e => getComputedStyle(e).display") == "flex"

    page.get_by_role("link", name="Log in", exact=True).click()
    page.fill("#id_username", "curator")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    # One clear error, not Django's and the template's both.
    errors = page.locator(".errorlist li, p.error")
    assert errors.count() == 1 and "correct username and password" in errors.inner_text()
    shots(page, "login-error-laptop")

    page.fill("#id_username", "curator")
    page.fill("#id_password", "s3cret-pass!")
    page.click("button[type=submit]")
    page.wait_for_url("**/videos/")
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url("**/admin/")
    assert "Site administration" in page.content()
    assert get_user_model().objects.get(username="curator").last_login is not None


@pytest.mark.django_db
def test_only_staff_are_offered_the_admin_on_the_home_page(client, django_user_model):
    fan = django_user_model.objects.create_user("fan", password="pw-fan-123")
    staff = django_user_model.objects.create_user("cur", password="pw-cur-123", is_staff=True)
    assert b"Open the admin" not in client.get("/").content
    client.force_login(fan)
    assert b"Open the admin" not in client.get("/").content
    client.force_login(staff)
    assert b"Open the admin" in client.get("/").content


@pytest.mark.django_db
def test_sign_up_errors_are_shown_as_errors(client):
    page = client.post("/accounts/signup/", {"username": "x", "password1": "a", "password2": "b"})
    assert b'class="errorlist"' in page.content


@pytest.mark.django_db
def test_the_front_door_shows_a_labelled_sample_and_how_to_start(client, django_user_model):
    page = client.get("/").content.decode()
    assert "twicesite/sample.jpg" in page and "Halle Berry" in page
    assert 'href="/accounts/signup/"' in page and "Sign up and upload a video" in page
    assert "How it works" in page and "up to 2 GB" in page
    fan = django_user_model.objects.create_user("fan", password="pw-fan-123")
    client.force_login(fan)
    page = client.get("/").content.decode()
    assert 'href="/videos/upload/"' in page and "Sign up and upload" not in page
