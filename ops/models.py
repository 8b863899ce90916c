from django.db import models
from django.db.models import Q


class OpsIncident(models.Model):
    """One incident of an ops condition: when it opened, the reminders sent, when it recovered.
    At most one open row per condition (the constraint): the row is how processes that each
    saw the condition agree on who sends its messages (ops.services.ops_event_record)."""

    # No choices: a new OpsCondition needs no migration.
    condition = models.CharField(max_length=40, help_text="An ops.conditions.OpsCondition")
    opened_at = models.DateTimeField(help_text="When the condition was first seen holding")
    detail = models.TextField(help_text="What the check saw when the condition opened")
    recovered_at = models.DateTimeField(null=True, blank=True)
    last_detail = models.TextField(
        blank=True, help_text="What the latest message said (the recovery's cause once recovered)"
    )
    reminders = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(help_text="When its last message (opened or reminder) went")
    recorded_by = models.CharField(max_length=200, help_text="The process that recorded it")

    class Meta:
        db_table = "ops_incidents"
        verbose_name = "ops incident"
        ordering = ("-opened_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["condition"],
                condition=Q(recovered_at__isnull=True),
                name="ops_incident_one_open_per_condition",
            )
        ]
        indexes = [models.Index(fields=["-opened_at"], name="ops_incident_opened_idx")]

    def __str__(self) -> str:
        state = "open" if self.recovered_at is None else "recovered"
        return f"{self.condition} {state} since {self.opened_at:%Y-%m-%d %H:%M:%S}"

    @property
    def active(self) -> bool:
        return self.recovered_at is None
