"""Page texts in English and Japanese, chosen by ``Accept-Language`` (RFC 9110 §12.5.4)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "CityOS sign-in",
        "login_heading": "Sign in",
        "username": "User name",
        "password": "Password",
        "sign_in": "Sign in",
        "login_failed": "The user name or password is incorrect, or the account cannot sign in now.",
        "too_many": "Too many attempts. Please wait a minute and try again.",
        "signed_in": "You are signed in.",
        "mfa_heading": "Two-step verification",
        "mfa_prompt": "Enter the 6-digit code from your authenticator app, or a recovery code.",
        "code": "Code",
        "verify": "Verify",
        "mfa_failed": "The code is not valid.",
        "setup_heading": "Set up two-step verification",
        "setup_password": "Enter your password again to set up an authenticator app.",
        "continue": "Continue",
        "setup_scan": "Scan this QR code with an authenticator app, or enter the key by hand, "
                      "then enter the code it shows.",
        "secret_key": "Key",
        "already_enrolled": "Two-step verification is already set up for this account.",
        "recovery_heading": "Recovery codes",
        "recovery_text": "Keep these codes somewhere safe. Each works once if you lose your "
                         "device. They are shown only now.",
        "approve_heading": "Allow access?",
        "approve_text": "{client} asks for access to:",
        "approve_pd": "This includes personal data.",
        "approve_consents": "Which of your data it may read is decided by your consents.",
        "allow": "Allow",
        "deny": "Deny",
        "logout_heading": "Sign out",
        "logout_text": "Sign out of CityOS on this browser?",
        "sign_out": "Sign out",
        "logged_out": "You are signed out.",
        "error_heading": "The request cannot be processed",
        "forbidden": "This form was not sent by this site, or it has expired. Go back, reload the "
                     "page and try again.",
        "session_needed": "Your sign-in has ended. Please start again from the application.",
    },
    "ja": {
        "title": "CityOS ログイン",
        "login_heading": "ログイン",
        "username": "ユーザー名",
        "password": "パスワード",
        "sign_in": "ログイン",
        "login_failed": "ユーザー名またはパスワードが正しくないか、"
                        "現在このアカウントではログインできません。",
        "too_many": "試行回数が多すぎます。1分ほど待ってから再度お試しください。",
        "signed_in": "ログインしました。",
        "mfa_heading": "2段階認証",
        "mfa_prompt": "認証アプリに表示された6桁のコード、またはリカバリーコードを入力してください。",
        "code": "コード",
        "verify": "確認",
        "mfa_failed": "コードが正しくありません。",
        "setup_heading": "2段階認証の設定",
        "setup_password": "認証アプリを設定するため、パスワードを再入力してください。",
        "continue": "次へ",
        "setup_scan": "認証アプリでこのQRコードを読み取るか、キーを手入力し、"
                      "表示されたコードを入力してください。",
        "secret_key": "キー",
        "already_enrolled": "このアカウントには2段階認証が設定済みです。",
        "recovery_heading": "リカバリーコード",
        "recovery_text": "これらのコードを安全な場所に保管してください。"
                         "端末を紛失した場合に各コードを1回だけ使えます。"
                         "表示されるのは今回のみです。",
        "approve_heading": "アクセスを許可しますか？",
        "approve_text": "{client} が次のアクセスを求めています:",
        "approve_pd": "個人データを含みます。",
        "approve_consents": "どのデータを読めるかは、あなたの同意の設定で決まります。",
        "allow": "許可",
        "deny": "拒否",
        "logout_heading": "ログアウト",
        "logout_text": "このブラウザで CityOS からログアウトしますか？",
        "sign_out": "ログアウト",
        "logged_out": "ログアウトしました。",
        "error_heading": "リクエストを処理できません",
        "forbidden": "このフォームはこのサイトから送信されていないか、期限切れです。"
                     "戻ってページを再読み込みし、"
                     "もう一度お試しください。",
        "session_needed": "ログインの有効期限が切れました。"
                          "アプリケーションからもう一度始めてください。",
    },
}


def pick_language(accept_language: str | None) -> str:
    """``ja`` when Japanese ranks above English in ``Accept-Language``, else ``en``."""
    best, best_q = "en", 0.0
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in MESSAGES and q > best_q:
            best, best_q = primary, q
    return best
