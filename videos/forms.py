from django import forms
from django.contrib.auth.forms import UserCreationForm

from gallery.models import Group
from videos.services import VIDEO_SUFFIXES


class PlainErrors:
    """A form whose errors read as one sentence, for JSON answers and messages."""

    def error_sentence(self) -> str:
        parts = []
        for name, errors in self.errors.items():
            text = " ".join(errors)
            if name in self.fields:
                text = f"{self.fields[name].label or name.replace('_', ' ').capitalize()}: {text}"
            parts.append(text)
        return " ".join(parts)


class UploadForm(PlainErrors, forms.Form):
    group = forms.ModelChoiceField(
        queryset=Group.objects.filter(versions__is_active=True).distinct()
    )
    title = forms.CharField(
        max_length=200, required=False, help_text="Up to 200 characters. Empty: the file's name."
    )
    is_public = forms.BooleanField(required=False, label="Anyone with the link can watch")
    # The file's name as the browser has it: the server's copy of the name loses everything
    # up to a slash ("<b>x</b>.mp4" arrives as "b>.mp4"), and the title keeps what was typed.
    file_name = forms.CharField(max_length=1000, required=False, widget=forms.HiddenInput)
    file = forms.FileField(
        widget=forms.ClearableFileInput(
            # The chooser offers videos first; the server still checks every file.
            attrs={"accept": ",".join(["video/*", *sorted(VIDEO_SUFFIXES)])}
        )
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")  # labels sit above their fields, bold
        super().__init__(*args, **kwargs)
        # A longer title is refused with the reason, not cut short by the browser unsaid.
        self.fields["title"].widget.attrs.pop("maxlength", None)
        groups = list(self.fields["group"].queryset[:2])
        if len(groups) == 1:
            self.fields["group"].initial = groups[0].pk  # nothing to choose


class VideoEditForm(PlainErrors, forms.Form):
    title = forms.CharField(max_length=200, strip=True)
    is_public = forms.BooleanField(required=False, label="Anyone with the link can watch")
    allow_original_download = forms.BooleanField(
        required=False, label="Anyone who can watch may download the original"
    )


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        help_text="Only to send you a link if you forget your password.", required=True
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
