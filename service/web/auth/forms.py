from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


class ConfirmForm(FlaskForm):
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current_password = PasswordField(lazy_gettext("Current password"),
                                     validators=[DataRequired(), Length(max=200)])
    new_password = PasswordField(lazy_gettext("New password"), validators=[DataRequired(), Length(max=200)])


class NewPasswordForm(FlaskForm):
    """An invitation's first password, or a reset's new one."""

    password = PasswordField(lazy_gettext("New password"), validators=[DataRequired(), Length(max=200)])


class ResetRequestForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=254)])
