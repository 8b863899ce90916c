import django.contrib.postgres.fields
from django.db import migrations, models


def install_the_regime_preset(apps, schema_editor):
    """The disabled "OI up, price down" preset (alerts.rules.default_rule_specs)."""
    from alerts.services import alert_rules_install_defaults

    alert_rules_install_defaults(rule_model=apps.get_model("alerts", "AlertRule"))


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0005_alert_channels"),
    ]

    operations = [
        migrations.AddField(
            model_name="alertrule",
            name="regimes",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(
                    choices=[
                        ("long_build", "OI up, price up: new longs"),
                        ("short_build", "OI up, price down: new shorts"),
                        ("short_cover", "OI down, price up: shorts covering or squeezed"),
                        ("long_flush", "OI down, price down: longs closing or liquidated"),
                        ("build_price_flat", "OI up while the price held"),
                        ("unwind_price_flat", "OI down while the price held"),
                        ("oi_flat", "OI barely moved"),
                        ("unknown", "no price for the window"),
                    ],
                    max_length=24,
                ),
                blank=True,
                default=list,
                help_text="Fire only on moves of these OI/price regimes (e.g. short_build: OI up, price down); empty: any",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="openinterestalert",
            name="regime",
            field=models.CharField(
                blank=True,
                choices=[
                    ("long_build", "OI up, price up: new longs"),
                    ("short_build", "OI up, price down: new shorts"),
                    ("short_cover", "OI down, price up: shorts covering or squeezed"),
                    ("long_flush", "OI down, price down: longs closing or liquidated"),
                    ("build_price_flat", "OI up while the price held"),
                    ("unwind_price_flat", "OI down while the price held"),
                    ("oi_flat", "OI barely moved"),
                    ("unknown", "no price for the window"),
                ],
                db_default="",
                default="",
                help_text="What kind of move: OI and price over the window (oi.regimes); empty for alerts stored before regimes existed",
                max_length=24,
            ),
        ),
        migrations.RunPython(install_the_regime_preset, migrations.RunPython.noop),
    ]
