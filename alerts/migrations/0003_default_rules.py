from django.db import migrations


def install_default_rules(apps, schema_editor):
    from alerts.services import alert_rules_install_defaults

    alert_rules_install_defaults(rule_model=apps.get_model("alerts", "AlertRule"))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_alert_rules")]

    operations = [migrations.RunPython(install_default_rules, migrations.RunPython.noop)]
