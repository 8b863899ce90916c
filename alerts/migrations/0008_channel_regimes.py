import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0007_alert_forward_outcomes'),
    ]

    operations = [
        migrations.AddField(
            model_name='alertchannel',
            name='regimes',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[('long_build', 'OI up, price up: new longs'), ('short_build', 'OI up, price down: new shorts'), ('short_cover', 'OI down, price up: shorts covering or squeezed'), ('long_flush', 'OI down, price down: longs closing or liquidated'), ('build_price_flat', 'OI up while the price held'), ('unwind_price_flat', 'OI down while the price held'), ('oi_flat', 'OI barely moved'), ('unknown', 'no price for the window')], max_length=24), blank=True, default=list, help_text='Only alerts of these OI/price regimes (e.g. short_build); empty: every regime', size=None),
        ),
    ]
