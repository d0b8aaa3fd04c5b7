"""fourlb: the 4lb.ca platform. `pulumi up -s prod|dev|local`.

Everything is validated and planned before the first resource is declared: a
bad stack setting stops here with a message naming the key.
"""

import pulumi

from components.platform import deploy
from components.settings import check_deployable, read_stack_config
from config import StackConfigError
from core.build import build_plan
from core.edge import check_shared_edge, served_stacks
from core.swarm import swarm_plan

stack = pulumi.get_stack()
try:
    config = read_stack_config(stack)
    plan = build_plan(config, stack, served_stacks(stack, config))
    check_shared_edge(stack, config, plan)
    check_deployable(stack, config, plan)
    swarm = swarm_plan(config, plan) if config.engine == "swarm" else None
except StackConfigError as error:
    raise pulumi.RunError(str(error)) from None

deploy(plan, swarm)
