"""A template as short human-readable lines (for `tcai templates show`)."""

from __future__ import annotations

from tcai.templates.schema import Template


def describe(template: Template) -> list[str]:
    booking = template.booking
    secondary = f", secondary {booking.secondary_cta}" if booking.secondary_cta else ""
    providers = (
        f"; providers {', '.join(booking.providers)} (default {booking.default_provider})"
        if booking.providers
        else ""
    )
    types = ", ".join(f"{a.id} ({a.mode})" for a in booking.appointment_types)
    chips = ", ".join(q.label + (" *" if q.primary else "") for q in template.quick_replies)
    lines = [
        f"{template.name} ({template.id}, v{template.version})",
        template.description,
        f"business type: {template.business.type}; tone {template.tone}/{template.formality}; "
        f"preset {template.behavior_preset}",
        f"services: {', '.join(s.name for s in template.business.services)}",
        f"quick replies: {chips}",
        f"booking: {booking.mode}, primary {booking.primary_cta}{secondary}{providers}",
        f"appointment types: {types}; pivot {booking.failsafe.pivot_appointment_type}",
        f"FAQs ({len(template.faqs)}):",
        *(f"  - {faq.question}" for faq in template.faqs),
    ]
    if template.catalog:
        lines.append("catalogue:")
        for item in template.catalog:
            price = f"{'from ' if item.price_from else ''}${item.price_cents / 100:.2f}"
            lines.append(f"  - {item.name}: {price}, {item.duration_minutes} min")
    lines.append(f"disclaimer: {template.disclaimer.title}")
    if template.crisis:
        lines.append(f"crisis rules: {len(template.crisis.keywords)} keywords")
    if template.compliance:
        lines.append(f"compliance rules: {len(template.compliance.rules)}")
    return lines
