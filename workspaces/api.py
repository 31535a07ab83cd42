"""`/api/workspaces/<id>/runs/`: list, start and cancel runs (session auth and
CSRF); errors answer {"error": "...", "field": "..."}."""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from boxes import stacks
from spoon.json_api import api, body, error
from workspaces import access, runs
from workspaces.models import Agent, Run, Workspace


def describe(run: Run, with_output=True) -> dict:
    answer = {
        "id": run.pk,
        "argv": run.argv,
        "explore": run.explore,
        "image": run.image,
        "worktree": run.worktree,
        "status": run.status,
        "exit_code": run.exit_code,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if run.agent_id:
        answer.update(agent=run.agent.name if run.agent else None, prompt=run.prompt)
    if with_output:
        answer.update(
            output=run.output,
            output_truncated=run.output_truncated,
            transcript=run.transcript_so_far(),
        )
    return answer


def own_run(request, workspace_id, run_id) -> Run:
    return get_object_or_404(
        Run.objects.select_related("workspace"),
        pk=run_id,
        workspace_id=workspace_id,
        workspace__user=request.user,
    )


@api(["GET", "POST"])
def run_list(request, workspace_id):
    workspace = get_object_or_404(Workspace, pk=workspace_id, user=request.user)
    if request.method == "GET":
        found = workspace.runs.all()[:50]
        return JsonResponse({"runs": [describe(r, with_output=False) for r in found]})
    try:
        data = body(request)
        if not isinstance(data.get("image", ""), str):
            return error("image must be the name of an offered image.", "image")
        try:
            image = stacks.pick(data.get("image", ""), current=workspace.image)
        except ValidationError as exc:
            return error(exc.messages[0], "image")
        if "prompt" in data:
            agent = None
            if data.get("agent"):
                agent = Agent.objects.filter(name=data["agent"]).first()
                if agent is None:
                    return error(f"No agent {data['agent']!r}.", "agent")
            run = runs.start_agent_turn(workspace, data["prompt"], agent=agent, image=image)
        else:
            explore = data.get("explore", False)
            if not isinstance(explore, bool):
                return error("explore must be true or false.", "explore")
            run = runs.start_run(workspace, data.get("argv"), explore=explore, image=image)
    except runs.Busy as exc:
        return error(exc.messages[0], "argv", status=409)
    except ValidationError as exc:
        field = getattr(exc, "field", None) or ("prompt" if "prompt" in data else "argv")
        return error(exc.messages[0], field, status=getattr(exc, "status", 400))
    return JsonResponse(describe(run), status=201)


@api(["GET"])
def run_detail(request, workspace_id, run_id):
    return JsonResponse(describe(own_run(request, workspace_id, run_id)))


@api(["POST"])
def cancel(request, workspace_id, run_id):
    return JsonResponse(describe(runs.cancel_run(own_run(request, workspace_id, run_id))))


@api(["POST"])
def stream_ticket(request, workspace_id, run_id):
    """A ticket for the run's live output (/ws/runs/<id>/), like the terminal's."""
    run = own_run(request, workspace_id, run_id)
    ticket = access.issue(request.user, workspace=run.workspace, opens=access.run_socket(run.pk))
    return JsonResponse(access.offer(ticket, "run-socket", run.pk))
