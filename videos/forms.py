from django import forms
from django.contrib.auth.forms import UserCreationForm

from gallery.models import Group


class UploadForm(forms.Form):
    group = forms.ModelChoiceField(
        queryset=Group.objects.filter(versions__is_active=True).distinct()
    )
    title = forms.CharField(max_length=200, required=False)
    is_public = forms.BooleanField(required=False, label="Anyone with the link can watch")
    file = forms.FileField()


class SignupForm(UserCreationForm):
    pass
