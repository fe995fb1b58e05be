from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class ConfirmForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])


class NewPasswordForm(FlaskForm):
    """An invitation's first password, or a reset's new one."""

    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])


class ResetRequestForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
