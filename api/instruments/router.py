"""The instrument registry over HTTP. Not patient data: any authenticated caller may read it, unaudited."""

from fastapi import APIRouter

from api.deps import CallerDep
from api.errors import NotFound, problem_responses
from api.instruments.registry import INSTRUMENTS
from api.instruments.schemas import InstrumentList, InstrumentPublic
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1/instruments", tags=["instruments"])

# The registry is immutable: build the answers once.
_PUBLIC = {code: InstrumentPublic.of(instrument) for code, instrument in INSTRUMENTS.items()}
_LIST = InstrumentList(items=list(_PUBLIC.values()))


@router.get("", response_model=InstrumentList, responses=problem_responses(401))
async def list_instruments(_caller: CallerDep) -> InstrumentList:
    """Every instrument with item wording, answer options, ranges and severity bands."""
    return _LIST


@router.get("/{code}", response_model=InstrumentPublic, responses=problem_responses(401, 404))
async def read_instrument(code: str, _caller: CallerDep) -> InstrumentPublic:
    public = _PUBLIC.get(code)
    if public is None:
        raise NotFound("Unknown instrument; see GET /v1/instruments")
    return public
