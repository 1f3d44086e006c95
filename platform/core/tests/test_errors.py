"""One application-error base, mapped once for the API and once for HTML pages (``core.errors``)."""
import json

from django import forms
from django.test import RequestFactory

from core.api.errors import exception_handler
from core.errors import AppErrorMiddleware, ConflictError, InputError, UploadTooLarge, form_add_error


def test_the_api_answers_an_app_error_in_the_one_error_shape():
    response = exception_handler(InputError("row 3: age must be a number", field="file"), {})
    assert response.status_code == 400
    assert response.data == {"error": {"status": 400, "code": "invalid",
                                       "message": "row 3: age must be a number",
                                       "details": {"field": "file"}}}
    response = exception_handler(UploadTooLarge("upload limit is 10 MB"), {})
    assert response.status_code == 413 and response.data["error"]["code"] == "upload_too_large"


def test_an_html_view_that_lets_an_app_error_through_renders_the_error_page_with_its_status(db):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/medical/studies/x/")
    request.user = AnonymousUser()
    response = AppErrorMiddleware(lambda r: None).process_exception(
        request, ConflictError("this report is signed and final; add an addendum instead"))
    assert response.status_code == 409 and "signed and final" in response.content.decode()
    api = RequestFactory().post("/api/v1/medical/studies/")
    body = json.loads(AppErrorMiddleware(lambda r: None).process_exception(api, InputError("bad")).content)
    assert body == {"error": {"status": 400, "code": "invalid", "message": "bad"}}
    assert AppErrorMiddleware(lambda r: None).process_exception(request, ValueError("a bug")) is None


def test_a_form_shows_the_error_on_its_field_or_on_top():
    class Form(forms.Form):
        age = forms.IntegerField(required=False)

    form = Form(data={})
    assert form.is_valid()
    form_add_error(form, InputError("age: must be 18 or over", field="age"))
    form_add_error(form, InputError("no scorecard version is active", field="model"))
    assert form.errors["age"] == ["age: must be 18 or over"]
    assert form.non_field_errors() == ["no scorecard version is active"]
