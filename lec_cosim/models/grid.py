"""Grid model: an LEC behind an MV/LV transformer at the end of an MV line, in pandapower.

Buses: ``mv_source`` (external grid) -- MV line (PI section) -- ``pcc`` (the LEC's point of
common coupling, MV side) -- transformer -- ``lv_busbar`` carrying the LEC's aggregate load, PV
and community battery.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandapower as pp


class PowerFlowError(RuntimeError):
    """The power flow did not converge."""


@dataclass(frozen=True)
class GridResult:
    """Power-flow result of one step (MV-side PCC flows are into the LEC)."""

    pcc_p_mw: float
    pcc_q_mvar: float
    pcc_vm_pu: float
    lv_vm_pu: float
    trafo_loading_percent: float
    line_loading_percent: float
    losses_mw: float


class LECGrid:
    """pandapower net of the LEC feeder; set the LV injections, solve, read the PCC."""

    def __init__(self, grid_config):
        line, trafo = grid_config.mv_line, grid_config.transformer
        net = pp.create_empty_network(name="lec_feeder")
        mv_source = pp.create_bus(net, vn_kv=trafo.vn_hv_kv, name="mv_source")
        self.pcc_bus = pp.create_bus(net, vn_kv=trafo.vn_hv_kv, name="pcc")
        self.lv_bus = pp.create_bus(net, vn_kv=trafo.vn_lv_kv, name="lv_busbar")
        pp.create_ext_grid(net, mv_source, vm_pu=grid_config.ext_grid_vm_pu, name="mv_grid")
        self.line = pp.create_line_from_parameters(
            net, mv_source, self.pcc_bus, length_km=line.length_km, r_ohm_per_km=line.r_ohm_per_km,
            x_ohm_per_km=line.x_ohm_per_km, c_nf_per_km=line.c_nf_per_km, max_i_ka=line.max_i_ka,
            name="mv_line",
        )
        self.trafo = pp.create_transformer_from_parameters(
            net, self.pcc_bus, self.lv_bus, sn_mva=trafo.sn_mva, vn_hv_kv=trafo.vn_hv_kv,
            vn_lv_kv=trafo.vn_lv_kv, vk_percent=trafo.vk_percent, vkr_percent=trafo.vkr_percent,
            pfe_kw=trafo.pfe_kw, i0_percent=trafo.i0_percent, name="mv_lv_transformer",
        )
        self.load = pp.create_load(net, self.lv_bus, p_mw=0.0, q_mvar=0.0, name="households")
        self.pv = pp.create_sgen(net, self.lv_bus, p_mw=0.0, q_mvar=0.0, name="pv", type="PV")
        self.storage = pp.create_storage(net, self.lv_bus, p_mw=0.0, max_e_mwh=1.0, name="community_battery")
        self.net = net

    def solve(self, load_p_mw: float, load_q_mvar: float, pv_p_mw: float, battery_p_mw: float) -> GridResult:
        """Power flow for one step (battery in load convention: positive charges)."""
        net = self.net
        net.load.at[self.load, "p_mw"] = load_p_mw
        net.load.at[self.load, "q_mvar"] = load_q_mvar
        net.sgen.at[self.pv, "p_mw"] = pv_p_mw
        net.storage.at[self.storage, "p_mw"] = battery_p_mw
        try:
            pp.runpp(net, algorithm="nr", tolerance_mva=1e-10, numba=False)
        except pp.powerflow.LoadflowNotConverged:
            raise PowerFlowError(
                f"power flow did not converge (load {load_p_mw:.4f} MW, PV {pv_p_mw:.4f} MW, "
                f"battery {battery_p_mw:.4f} MW)"
            ) from None
        return GridResult(
            pcc_p_mw=float(net.res_trafo.at[self.trafo, "p_hv_mw"]),
            pcc_q_mvar=float(net.res_trafo.at[self.trafo, "q_hv_mvar"]),
            pcc_vm_pu=float(net.res_bus.at[self.pcc_bus, "vm_pu"]),
            lv_vm_pu=float(net.res_bus.at[self.lv_bus, "vm_pu"]),
            trafo_loading_percent=float(net.res_trafo.at[self.trafo, "loading_percent"]),
            line_loading_percent=float(net.res_line.at[self.line, "loading_percent"]),
            losses_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
        )
