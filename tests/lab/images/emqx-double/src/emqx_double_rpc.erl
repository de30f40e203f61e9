%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the cluster RPC port.
%% Listens where gen_rpc 2.7.0 would (rpc.tcp_server_port, 5369, with
%% port_discovery = manual; 5370 + N with stateless) and accepts connections,
%% but does NOT speak the gen_rpc protocol: it reads and discards.
-module(emqx_double_rpc).

-export([start_link/0, port/0, init/1]).

start_link() -> proc_lib:start_link(?MODULE, init, [self()]).

port() ->
    case emqx_double:conf("rpc.port_discovery", "stateless") of
        "manual" -> list_to_integer(emqx_double:conf("rpc.tcp_server_port", "5369"));
        _ -> 5370 + (emqx_double_epmd:port(node()) - 4370)
    end.

init(Parent) ->
    Port = port(),
    case gen_tcp:listen(Port, [binary, {reuseaddr, true}, {active, false}]) of
        {ok, L} ->
            emqx_double:say("cluster RPC port ~p listening (accepts, does not speak gen_rpc)", [Port]),
            proc_lib:init_ack(Parent, {ok, self()}),
            emqx_double:accept_loop(L, fun drain/1);
        {error, Reason} ->
            proc_lib:init_ack(Parent, {error, {rpc_listen, Port, Reason}})
    end.

drain(S) ->
    case gen_tcp:recv(S, 0) of
        {ok, _} -> drain(S);
        {error, _} -> gen_tcp:close(S)
    end.
