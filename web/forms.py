"""WTForms forms: every form carries a CSRF token (Flask-WTF).  Fields only check shape here
(present, not absurdly long); the domain (search_party) decides what is valid and says why."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, MultipleFileField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional

from search_party.community.accounts import MAX_DISPLAY_NAME, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

EMAIL = [DataRequired("Enter your e-mail address."), Length(max=254)]
NEW_PASSWORD = [DataRequired("Choose a password."),
                Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
                       message=f"Use at least {MIN_PASSWORD_LENGTH} characters.")]


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token travels with it."""


class SignUpForm(FlaskForm):
    email = EmailField("E-mail", validators=EMAIL)
    display_name = StringField("Name others see (optional)", validators=[Optional(), Length(max=MAX_DISPLAY_NAME)])
    password = PasswordField(f"Password (at least {MIN_PASSWORD_LENGTH} characters)", validators=NEW_PASSWORD)
    confirm = PasswordField("Password again", validators=[EqualTo("password", "The passwords differ.")])


class SignInForm(FlaskForm):
    email = EmailField("E-mail", validators=EMAIL)
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=MAX_PASSWORD_LENGTH)])


class ResetRequestForm(FlaskForm):
    email = EmailField("E-mail", validators=EMAIL)


class ResetPasswordForm(FlaskForm):
    password = PasswordField(f"New password (at least {MIN_PASSWORD_LENGTH} characters)", validators=NEW_PASSWORD)
    confirm = PasswordField("New password again", validators=[EqualTo("password", "The passwords differ.")])


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired("Enter your password to confirm."),
                                                          Length(max=MAX_PASSWORD_LENGTH)])
    understood = BooleanField("I understand that this deletes my account and all its data now",
                              validators=[InputRequired("Tick the box to confirm.")])


class CameraForm(FlaskForm):
    name = StringField("Name (only you see it), e.g. “porch”", validators=[Optional(), Length(max=60)])
    lat = StringField("Latitude", validators=[Length(max=40)])
    lon = StringField("Longitude", validators=[Length(max=40)])
    retention_days = StringField("Keep its sightings for (days)", default="30", validators=[Length(max=6)])


class TimeZoneForm(FlaskForm):
    time_zone = StringField("Time zone of this camera's clock, e.g. Europe/Berlin", validators=[Length(max=64)])


class FilmedAtForm(FlaskForm):
    """When the clip was filmed, as the owner's browser shows local times (``datetime-local``),
    with the browser's UTC offset in minutes (filled by the page's script; 0 without it)."""

    filmed_at = StringField("Filmed from (your local time)", validators=[DataRequired("Enter when the clip starts."),
                                                                        Length(max=40)])
    offset_minutes = StringField(validators=[Optional(), Length(max=6)])


class OptInForm(FlaskForm):
    agree = BooleanField("Yes, search this camera's clips for lost pets, and ask me before anything is shared",
                         validators=[InputRequired("Tick the box to opt this camera in.")])


class TokenForm(FlaskForm):
    label = StringField("Label (where the uploader runs), e.g. “garage PC”", validators=[Optional(), Length(max=60)])


class UploadForm(FlaskForm):
    clips = MultipleFileField("Video clips")
