"""Paging channels. One module per channel behind `alerts.channels.base`; REGISTRY kind → path.

`console` is the outbox `Deliverer` used by the demo; every other entry is a
`base.Channel` (`async send(page) -> DeliveryResult`) built as
`cls(cls.Config.model_validate(cfg), session=session, clock=clock)`.
"""

REGISTRY: dict[str, str] = {
    "apprise": "alerts.channels.apprise_urls.AppriseChannel",
    "console": "alerts.channels.console.ConsoleChannel",
    "email": "alerts.channels.email.EmailChannel",
    "ntfy": "alerts.channels.ntfy.NtfyChannel",
    "pagerduty": "alerts.channels.pagerduty.PagerDutyChannel",
    "sms_odorik": "alerts.channels.sms_odorik.OdorikSmsChannel",
    "telegram": "alerts.channels.telegram.TelegramChannel",
    "webhook": "alerts.channels.webhook.WebhookChannel",
}
