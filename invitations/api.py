"""The Prism invitation API. The token is never returned: it exists only in the e-mailed link."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations import services
from invitations.models import Invitation, InvitationStatus
from platform_site.api import fields as strict
from platform_site.errors import NotFound, PermissionDenied, ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_or_404
from projects.models import Project, ProjectRole
from projects.services import project_role_of


class InvitationSerializer(serializers.ModelSerializer):
    project_id = strict.CharField(source="project.id")
    project_name = strict.CharField(source="project.name")
    invited_by = strict.EmailField(source="invited_by.email", allow_null=True, default=None)
    delivery = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "project_id",
            "project_name",
            "email",
            "role",
            "status",
            "message",
            "invited_by",
            "invited_at",
            "expires_at",
            "access_expires_at",
            "accepted_at",
            "declined_at",
            "decline_reason",
            "revoked_at",
            "resend_count",
            "last_resent",
            "delivery",
        ]
        read_only_fields = fields

    def get_delivery(self, invitation) -> dict:
        return {
            "status": invitation.delivery_status,
            "attempts": invitation.delivery_attempts,
            "last_error": invitation.delivery_error,
            "delivered_at": invitation.delivered_at,
        }


class InvitationListSerializer(serializers.Serializer):
    invitations = InvitationSerializer(many=True)
    count = strict.IntegerField()


class SendSerializer(serializers.Serializer):
    project_id = strict.CharField()
    email = strict.EmailField()
    role = strict.ChoiceField(choices=ProjectRole.choices, default=ProjectRole.MEMBER)
    message = strict.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        max_length=services.MESSAGE_MAX_LENGTH,
        help_text="Plain text shown in the e-mail (no HTML, no links made clickable); line breaks allowed.",
    )
    expires_in_days = strict.IntegerField(required=False, min_value=1, max_value=90)
    access_expires_at = strict.DateTimeField(required=False, allow_null=True)
    invited_by = strict.CharField(required=False, help_text="Ignored: the inviter is the caller.")


class AnswerSerializer(serializers.Serializer):
    token = strict.CharField(
        required=False, help_text="The link's token; proves the invitation when any account may accept."
    )
    reason = strict.CharField(required=False, allow_blank=True, default="", max_length=2000)


class BulkRowSerializer(serializers.Serializer):
    email = strict.CharField()
    role = strict.CharField(required=False, allow_blank=True)
    message = strict.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=services.MESSAGE_MAX_LENGTH
    )


class BulkSerializer(serializers.Serializer):
    project_id = strict.CharField()
    invitations = BulkRowSerializer(
        many=True,
        allow_empty=False,
        help_text=f"At most CARREL_INVITATIONS_BULK_MAX rows (default {services.DEFAULT_BULK_MAX}).",
    )
    default_role = strict.ChoiceField(choices=ProjectRole.choices, default=ProjectRole.MEMBER)
    default_message = strict.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        max_length=services.MESSAGE_MAX_LENGTH,
    )
    invited_by = strict.CharField(required=False, help_text="Ignored: the inviter is the caller.")

    def validate_invitations(self, rows):
        most = services.bulk_max()
        if len(rows) > most:
            raise serializers.ValidationError(f"Ensure this field has no more than {most} elements.")
        return rows


class SendingView(APIView):
    """Sending views answer a spent daily limit with 429 and `Retry-After`."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, services.InvitationRateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response


def _visible_invitation(request, invitation_id: str) -> Invitation:
    return visible_or_404(
        Invitation,
        request.user,
        code="INVITATION_NOT_FOUND",
        refine=lambda qs: qs.select_related("project", "project__organization", "invited_by"),
        pk=invitation_id,
    )


def _project(request, project_id: str) -> Project:
    return visible_or_404(
        Project,
        request.user,
        code="PROJECT_NOT_FOUND",
        message="No such project visible to you.",
        refine=lambda qs: qs.select_related("organization"),
        pk=project_id,
    )


def _status_filter(request, queryset):
    wanted = request.query_params.get("status")
    if wanted is not None:
        if wanted not in InvitationStatus.values:
            raise ValidationFailed(fields={"status": [f"One of {', '.join(InvitationStatus.values)}."]})
        queryset = queryset.filter(status=wanted)
    return queryset


def _listing(queryset) -> Response:
    invitations = list(queryset.select_related("project", "invited_by").order_by("-invited_at", "id"))
    return Response({"invitations": InvitationSerializer(invitations, many=True).data, "count": len(invitations)})


STATUS_PARAM = OpenApiParameter("status", str, enum=InvitationStatus.values)


class InvitationSendView(SendingView):
    @extend_schema(
        summary="Invite someone to a project by e-mail (owners and admins; never above your own role).",
        request=SendSerializer,
        responses={201: InvitationSerializer},
        tags=["invitations"],
    )
    def post(self, request):
        form = SendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        invitation = services.invitation_send(
            actor=request.user,
            project=_project(request, data["project_id"]),
            email=data["email"],
            role=data["role"],
            message=data["message"],
            expires_in_days=data.get("expires_in_days"),
            access_expires_at=data.get("access_expires_at"),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationBulkView(SendingView):
    @extend_schema(
        summary=(
            "Invite many people at once; each row succeeds or fails on its own, but a request that would pass the "
            "daily limits is refused whole (429)."
        ),
        request=BulkSerializer,
        responses=inline_serializer(
            "BulkInvitationResult",
            {"summary": serializers.DictField(), "results": serializers.ListField(child=serializers.DictField())},
        ),
        tags=["invitations"],
    )
    def post(self, request):
        form = BulkSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        result = services.invitation_bulk(
            actor=request.user,
            project=_project(request, data["project_id"]),
            rows=[dict(row) for row in data["invitations"]],
            default_role=data["default_role"],
            default_message=data["default_message"],
        )
        return Response({"summary": result.summary, "results": result.results})


class ProjectInvitationsView(APIView):
    @extend_schema(
        operation_id="invitations_project_list",
        summary="A project's invitations (owners and admins).",
        parameters=[STATUS_PARAM],
        responses=InvitationListSerializer,
        tags=["invitations"],
    )
    def get(self, request, project_id: str):
        project = _project(request, project_id)
        role = project_role_of(user=request.user, project=project)
        if role not in (ProjectRole.OWNER, ProjectRole.ADMIN):
            raise PermissionDenied("Only the project's owners and admins see its invitations.")
        return _listing(_status_filter(request, Invitation.objects.filter(project=project)))


class MyInvitationsView(APIView):
    @extend_schema(
        operation_id="invitations_me_list",
        summary="Invitations addressed to the caller's verified e-mail addresses.",
        parameters=[STATUS_PARAM],
        responses=InvitationListSerializer,
        tags=["invitations"],
    )
    def get(self, request):
        return _listing(_status_filter(request, Invitation.objects.addressed_to(request.user)))


class InvitationDetailView(APIView):
    @extend_schema(
        summary="One invitation (its project's owners and admins, or the invitee).",
        responses=InvitationSerializer,
        tags=["invitations"],
    )
    def get(self, request, invitation_id: str):
        return Response(InvitationSerializer(_visible_invitation(request, invitation_id)).data)

    @extend_schema(
        summary="Revoke a pending invitation: its link stops working.", responses={204: None}, tags=["invitations"]
    )
    def delete(self, request, invitation_id: str):
        services.invitation_revoke(actor=request.user, invitation=_visible_invitation(request, invitation_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _answer_target(request, invitation_id: str, token: str | None) -> Invitation:
    """Visible invitations (e.g. to the caller's verified e-mail), or, with the link's token, the one it opens.

    Anything else is a 404, so other organizations' invitations reveal nothing.
    """
    invitation = (
        scoped_queryset(Invitation, request.user)
        .select_related("project", "project__organization")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None and token:
        try:
            opened = services.invitation_by_token(token)
        except NotFound:
            opened = None
        invitation = opened if opened is not None and opened.pk == invitation_id else None
    if invitation is None:
        raise NotFound(f"No invitation '{invitation_id}' visible to you.", code="INVITATION_NOT_FOUND")
    return invitation


class InvitationAcceptView(APIView):
    @extend_schema(
        summary="Accept an invitation addressed to one of your verified e-mails. Single use.",
        request=AnswerSerializer,
        responses=inline_serializer(
            "InvitationAccepted",
            {
                "id": strict.CharField(),
                "project_id": strict.CharField(),
                "status": strict.CharField(),
                "accepted_at": strict.DateTimeField(),
                "message": strict.CharField(),
            },
        ),
        tags=["invitations"],
    )
    def post(self, request, invitation_id: str):
        form = AnswerSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token = form.validated_data.get("token")
        invitation = services.invitation_accept(
            actor=request.user, invitation=_answer_target(request, invitation_id, token), token=token
        )
        return Response(
            {
                "id": invitation.pk,
                "project_id": invitation.project_id,
                "status": invitation.status,
                "accepted_at": invitation.accepted_at,
                "message": f"Successfully joined project as {invitation.role}",
            }
        )


class InvitationDeclineView(APIView):
    @extend_schema(
        summary="Decline an invitation addressed to one of your verified e-mails, with an optional reason.",
        request=AnswerSerializer,
        responses=inline_serializer(
            "InvitationDeclined",
            {
                "id": strict.CharField(),
                "status": strict.CharField(),
                "declined_at": strict.DateTimeField(),
                "decline_reason": strict.CharField(),
            },
        ),
        tags=["invitations"],
    )
    def post(self, request, invitation_id: str):
        form = AnswerSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token = form.validated_data.get("token")
        invitation = services.invitation_decline(
            actor=request.user,
            invitation=_answer_target(request, invitation_id, token),
            reason=form.validated_data["reason"],
            token=token,
        )
        return Response(
            {
                "id": invitation.pk,
                "status": invitation.status,
                "declined_at": invitation.declined_at,
                "decline_reason": invitation.decline_reason,
            }
        )


class InvitationResendView(SendingView):
    @extend_schema(
        summary="Resend a pending invitation: a new link (the old one stops working) and a fresh expiry.",
        request=None,
        responses=inline_serializer(
            "InvitationResent",
            {
                "id": strict.CharField(),
                "status": strict.CharField(),
                "resend_count": strict.IntegerField(),
                "last_resent": strict.DateTimeField(),
                "message": strict.CharField(),
            },
        ),
        tags=["invitations"],
    )
    def post(self, request, invitation_id: str):
        invitation = services.invitation_resend(
            actor=request.user, invitation=_visible_invitation(request, invitation_id)
        )
        return Response(
            {
                "id": invitation.pk,
                "status": invitation.status,
                "resend_count": invitation.resend_count,
                "last_resent": invitation.last_resent,
                "message": "Invitation resent successfully",
            }
        )
